#!/usr/bin/env python
import os
import sys


def main():
    # Task workers fork, so they connect to the database differently (config/workers.py).
    workers = sys.argv[1:2] == ["run_workers"]
    os.environ.setdefault(
        "DJANGO_SETTINGS_MODULE", "config.workers" if workers else "config.settings"
    )
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
