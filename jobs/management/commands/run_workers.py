"""``manage.py run_workers``: Steward's task workers (django-q2's cluster in three processes,
restarted when a killed worker wedged it; see ``jobs.cluster``). Run it with ``--skip-checks``,
as qcluster."""

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from jobs.cluster import supervise


class Command(BaseCommand):
    help = "Run Steward's task workers (a django-q2 cluster that is restarted if it wedges)."

    def handle(self, *args, **options):
        keep_connections()
        sys.exit(supervise())


def keep_connections():
    """Task workers keep their PostgreSQL connection between tasks (``WORKER_CONN_MAX_AGE``
    seconds, checked before reuse). django-q2 closes a connection past its age after every
    task, and with the default age of 0 each of the pump's email and webhook tasks opened a new
    one: a fifth of an idle-ish worker's CPU in P1. Web processes share a bounded pool instead
    (settings, ``DATABASE_POOL_SIZE``); workers leave it out.
    The settings dict is the one every connection of this process and its forks reads."""
    database = settings.DATABASES["default"]
    if settings.IS_POSTGRES and "CONN_MAX_AGE" not in os.environ:
        database.get("OPTIONS", {}).pop("pool", None)  # the web processes' pool; see settings
        database["CONN_MAX_AGE"] = settings.WORKER_CONN_MAX_AGE
        database["CONN_HEALTH_CHECKS"] = True
