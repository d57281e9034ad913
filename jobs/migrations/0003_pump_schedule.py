"""Install the poller's watchdog schedule (every minute; it starts pumps that are not beating)."""

from django.db import migrations
from django.utils import timezone


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="steward-pump-watchdog",
        defaults={
            "func": "jobs.tasks.watchdog",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="steward-pump-watchdog").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_provider_lane"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
