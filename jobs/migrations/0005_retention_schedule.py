"""Install the daily retention purge (jobs.retention.purge_expired_content)."""

from django.db import migrations
from django.utils import timezone


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="steward-retention-purge",
        defaults={
            "func": "jobs.tasks.purge_expired_content",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="steward-retention-purge").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0004_dispatch_pause_and_retention"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
