"""Workspaces are Steward's tenants; a membership gives a user one role in one workspace."""

import hashlib
import uuid

from django.conf import settings
from django.db import models


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    # Zero data retention: background mode keeps response data at the provider for about ten
    # minutes, so such a workspace may only use the sync lane.
    zero_data_retention = models.BooleanField(default=False)
    # Retention of content in Steward's own database: finished jobs older than this many days
    # lose their input / their outputs to the daily purge (jobs.retention). Empty keeps them.
    input_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days to keep finished jobs' inputs. Empty: keep them.",
    )
    output_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days to keep finished jobs' outputs (results, drafts, partial text). "
        "Empty: keep them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="membership_once_per_user")
        ]

    def __str__(self):
        return f"{self.user} · {self.workspace} · {self.role}"

    @property
    def can_review(self):
        return self.role in (Role.REVIEWER, Role.ADMIN)


class ApiToken(models.Model):
    """A personal API token. Only the SHA-256 of the secret is stored; the secret is shown once.

    A token acts with its user's workspace roles. Revoking keeps the row (and its last use) for
    the audit; a revoked token never authenticates again.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the secret ("stw_AbCd"), so a person can tell their tokens apart.
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…) of {self.user}"

    @property
    def is_active(self):
        return self.revoked_at is None

    @staticmethod
    def hash_secret(secret):
        return hashlib.sha256(secret.encode()).hexdigest()
