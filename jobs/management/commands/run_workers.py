"""``manage.py run_workers``: Steward's task workers (django-q2's cluster in three processes,
restarted when a killed worker wedged it; see ``jobs.execution.cluster``). Run it with
``--skip-checks``, as qcluster, under the worker settings (``config.workers``, which
``manage.py`` picks for this command unless ``DJANGO_SETTINGS_MODULE`` says otherwise)."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.execution.cluster import supervise


class Command(BaseCommand):
    help = "Run Steward's task workers (a django-q2 cluster that is restarted if it wedges)."

    def handle(self, *args, **options):
        if not getattr(settings, "IS_WORKER_SETTINGS", False):
            raise CommandError(
                f"run_workers needs the worker settings, not {settings.SETTINGS_MODULE}: "
                "set DJANGO_SETTINGS_MODULE=config.workers (with "
                "STEWARD_WEB_SETTINGS=config.production in production), or leave it unset."
            )
        sys.exit(supervise())
