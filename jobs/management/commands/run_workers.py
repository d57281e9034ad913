"""``manage.py run_workers``: Steward's task workers (django-q2's qcluster, restarted when a
killed worker wedged it; see ``jobs.cluster``). Run it with ``--skip-checks``, as qcluster."""

import sys

from django.core.management.base import BaseCommand

from jobs.cluster import supervise


class Command(BaseCommand):
    help = "Run Steward's task workers (a django-q2 cluster that is restarted if it wedges)."

    def handle(self, *args, **options):
        code = supervise()
        if code:
            sys.exit(code)
