from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo job types (one per authority class) and the refund ledger their external effect
    writes to: what ``make run`` offers a newcomer, kept apart from Steward's own apps."""

    name = "demo"
    verbose_name = "Demo job types"

    def ready(self):
        from . import job_types  # noqa: F401  (declaring the job types registers them)
