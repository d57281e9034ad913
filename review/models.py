"""Review records: per-job-type policy overrides, claims, decisions and the release ledger.

A job's status still lives on ``jobs.Job`` and only moves through ``jobs.services``; these
tables hold what the review step adds: who may work a draft right now (``ReviewClaim``), what
each reviewer decided and on which artifact version (``Decision``), and whether an approved
external effect has run (``ReleaseRecord``, one per job, so a duplicated task cannot run it twice).
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role
from jobs.errors import UnknownJobType
from jobs.job_types import get_job_type
from jobs.models import Artifact, Job

CLAIM_LEASE = timedelta(minutes=15)


class ReviewPolicy(models.Model):
    """Admin-editable overrides of one job type's declared review policy.

    Blank fields fall back to the job type's declaration, so a policy row only says what an
    operator changed.
    """

    job_type = models.CharField(max_length=64, unique=True)
    sample_rate = models.FloatField(
        null=True,
        blank=True,
        help_text="Low-risk writes: share of jobs a reviewer checks (0 to 1). Blank: job type's.",
    )
    approver_role = models.CharField(
        max_length=16,
        blank=True,
        choices=[(Role.REVIEWER, "Reviewer or admin"), (Role.ADMIN, "Admin only")],
        help_text="External effects: who may approve. Blank: the job type's (default admin).",
    )
    review_sla = models.DurationField(
        null=True,
        blank=True,
        help_text="How long a draft may wait before the queue flags it, e.g. 01:00:00.",
    )
    review_sensitive_input = models.BooleanField(
        null=True,
        blank=True,
        help_text="Read-only jobs: does input marked sensitive need review? Blank: yes.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name_plural = "review policies"
        ordering = ["job_type"]
        constraints = [
            models.CheckConstraint(
                condition=Q(sample_rate__isnull=True)
                | (Q(sample_rate__gte=0) & Q(sample_rate__lte=1)),
                name="review_policy_sample_rate_0_1",
            ),
        ]

    def __str__(self):
        return f"Review policy for {self.job_type}"

    def clean(self):
        try:
            get_job_type(self.job_type)
        except UnknownJobType as error:
            raise ValidationError({"job_type": error.message}) from None
        if self.sample_rate is not None and not 0 <= self.sample_rate <= 1:
            raise ValidationError({"sample_rate": "Use a share between 0 and 1, like 0.2."})
        if self.review_sla is not None and self.review_sla <= timedelta(0):
            raise ValidationError({"review_sla": "Use a positive duration."})


POLICY_FIELDS = ["sample_rate", "approver_role", "review_sla", "review_sensitive_input"]


class ReviewPolicyChange(models.Model):
    """One change of a job type's review policy, append-only: who, when, and every overridden
    field before and after (``None``: the job type's declaration applies). Written by
    ``services.save_review_policy`` and ``services.delete_review_policy`` only."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"

    job_type = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self):
        return f"{self.job_type} policy {self.kind} at {self.changed_at:%Y-%m-%d %H:%M}"


class ClaimQuerySet(models.QuerySet):
    def live(self, now=None):
        return self.filter(released_at__isnull=True, expires_at__gt=now or timezone.now())


class ReviewClaim(models.Model):
    """A reviewer's lease on one draft. At most one open claim per job (a database constraint);
    an open claim past ``expires_at`` no longer counts and is closed by the next claimant."""

    class End(models.TextChoices):
        RELEASED = "released", "Released"
        DECIDED = "decided", "Decided"
        EXPIRED = "expired", "Expired"
        ESCALATED = "escalated", "Escalated"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="review_claims")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_claims"
    )
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    renewals = models.PositiveIntegerField(default=0)
    released_at = models.DateTimeField(null=True, blank=True)
    end = models.CharField(max_length=12, choices=End.choices, blank=True)

    objects = ClaimQuerySet.as_manager()

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(released_at__isnull=True),
                name="review_one_open_claim_per_job",
            ),
        ]

    def __str__(self):
        return f"{self.reviewer} on {self.job_id}"

    def is_live(self, now=None):
        return self.released_at is None and self.expires_at > (now or timezone.now())


class Decision(models.Model):
    """What a reviewer decided, on which artifact version, and why. Append-only in practice:
    the admin shows it read-only."""

    class Kind(models.TextChoices):
        APPROVE = "approve", "Approved"
        EDIT_APPROVE = "edit_approve", "Approved with edits"
        REJECT = "reject", "Rejected"
        SEND_BACK = "send_back", "Sent back"
        ESCALATE = "escalate", "Escalated"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions"
    )
    kind = models.CharField(max_length=14, choices=Kind.choices)
    note = models.TextField(blank=True, help_text="Reason, notes for the next attempt, or note.")
    artifact = models.ForeignKey(
        Artifact, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    artifact_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["job", "created_at"], name="decision_job_time")]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.reviewer} on {self.job_id}"


class ReleaseRecord(models.Model):
    """The idempotency record of an approved external effect: one row per job, locked while the
    action runs, so the action runs once however often the release task is delivered."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to run"
        SUCCEEDED = "succeeded", "Ran"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Not run (job no longer approved)"

    job = models.OneToOneField(Job, on_delete=models.PROTECT, related_name="release_record")
    decision = models.ForeignKey(
        Decision, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=120, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    runs = models.PositiveIntegerField(default=0, help_text="How often the action was called.")
    deliveries = models.PositiveIntegerField(
        default=0, help_text="How often the release task was delivered (duplicates included)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"release of {self.job_id} ({self.state})"

    @property
    def is_done(self):
        return self.state != self.State.PENDING
