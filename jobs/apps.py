from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        # Declaring the demo job types registers them.
        from . import checks  # noqa: F401  (registers the system checks)
        from .job_types import demo  # noqa: F401
