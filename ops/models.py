"""The operators' audit log. Controls that act on a whole workspace (pause, resume, drain, bulk
retry) leave one ``OpsAction`` here; what they do to single jobs also leaves JobEvents."""

from django.conf import settings
from django.db import models

from accounts.models import Workspace


class OpsAction(models.Model):
    class Kind(models.TextChoices):
        PAUSE = "pause", "Paused dispatch"
        DRAIN = "drain", "Started draining"
        RESUME = "resume", "Resumed dispatch"
        RETRY_FAILURES = "retry_failures", "Retried failures"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="ops_actions")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ops_actions"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    message = models.CharField(max_length=300)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="opsaction_recent")]

    def __str__(self):
        return f"{self.get_kind_display()} in {self.workspace} by {self.actor}"
