"""The job record, its status machine, attempts, versioned artifacts and the audit trail.

A ``Job`` is written before any provider call. Its status only moves through the transitions
below (``protected=True``), and ``ConcurrentTransitionMixin`` turns a save over a status that
changed underneath us into ``ConcurrentTransition`` instead of a lost update.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from accounts.models import Workspace

from .job_types import AuthorityClass, Lane


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    NEEDS_REVIEW = "needs_review", "Needs review"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    EXPIRED = "expired", "Expired"


ACTIVE = (Status.QUEUED, Status.RUNNING)
OPEN = (Status.QUEUED, Status.RUNNING, Status.NEEDS_REVIEW)
TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELED, Status.EXPIRED)
RETRYABLE_FROM = (Status.FAILED, Status.CANCELED, Status.EXPIRED)


class FailureKind(models.TextChoices):
    INPUT = "input", "Input"
    PROVIDER = "provider", "Provider"
    TOOL = "tool", "Tool"
    POLICY = "policy", "Policy"
    TIMEOUT = "timeout", "Timeout"
    REVIEW = "review", "Review"


class Priority(models.IntegerChoices):
    LOW = 10, "low"
    NORMAL = 20, "normal"
    HIGH = 30, "high"


class ReviewState(models.TextChoices):
    NONE = "", "—"
    NOT_REQUIRED = "not_required", "Not required"
    NOT_SAMPLED = "not_sampled", "Not sampled"
    PENDING = "pending", "Waiting for review"
    ESCALATED = "escalated", "Escalated"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SENT_BACK = "sent_back", "Sent back"


# The drafts the review queue lists (``review.selectors.QUEUE_STATES``), for its indexes.
WAITING_FOR_REVIEW = Q(
    status=Status.NEEDS_REVIEW, review_state__in=[ReviewState.PENDING, ReviewState.ESCALATED]
)


def attempts_remain(job):
    return job.attempt_count < job.attempt_limit


def retrying_may_help(job):
    """A failure Steward judged not fixable by running the same input again (bad input, a
    policy refusal, a rejected draft, an answer cut short) is submitted anew, not retried."""
    return job.status != Status.FAILED or job.failure_retryable


class Job(ConcurrentTransitionMixin, models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="jobs")
    submitter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submitted_jobs"
    )
    job_type = models.CharField(max_length=64)
    authority_class = models.CharField(max_length=20, choices=AuthorityClass.choices)
    lane = models.CharField(max_length=12, choices=Lane.choices)
    model = models.CharField(max_length=64)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    input = models.JSONField(default=dict)
    input_summary = models.CharField(max_length=200, blank=True)
    is_sensitive = models.BooleanField(default=False)

    status = FSMField(default=Status.QUEUED, choices=Status.choices, protected=True)
    review_state = models.CharField(
        max_length=16, choices=ReviewState.choices, default=ReviewState.NONE, blank=True
    )
    # NULL (not "") when absent, so the per-workspace unique constraint ignores keyless jobs.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    idempotency_fingerprint = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(help_text="Deadline: past it the job is no longer useful.")

    attempt_count = models.PositiveIntegerField(default=0)
    attempt_limit = models.PositiveIntegerField(default=3)
    # When a worker should next look at the job: dispatch while queued, poll while running.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    stream_cursor = models.IntegerField(null=True, blank=True)
    wait_reason = models.CharField(max_length=200, blank=True)

    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    provider_finished_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    failure_kind = models.CharField(max_length=12, choices=FailureKind.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    failure_retryable = models.BooleanField(default=False)
    has_partial_output = models.BooleanField(default=False)
    needs_human = models.BooleanField(default=False)

    is_archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)
    # Set by the retention purge (jobs.retention) when the input / the outputs were removed.
    input_purged_at = models.DateTimeField(null=True, blank=True)
    output_purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="job_idempotency_key_per_workspace",
            ),
        ]
        indexes = [
            # The poller's read: active jobs whose next look is due.
            models.Index(
                fields=["next_poll_at"],
                condition=Q(status__in=["queued", "running"]),
                name="job_due_for_poll",
            ),
            # The review console's queue: a workspace's drafts waiting for a decision, oldest
            # first or by priority. It also counts the queue from the index alone (``id`` is
            # there for the claim filters' anti-join).
            models.Index(
                fields=["workspace", "created_at", "id"],
                condition=WAITING_FOR_REVIEW,
                name="job_review_queue",
            ),
            models.Index(
                fields=["workspace", "-priority", "created_at"],
                condition=WAITING_FOR_REVIEW,
                name="job_review_queue_priority",
            ),
            # My jobs: a submitter's unarchived jobs newest first, all or of one status.
            models.Index(
                fields=["workspace", "submitter", "-created_at"],
                condition=Q(is_archived=False),
                name="job_my_jobs",
            ),
            models.Index(
                fields=["workspace", "submitter", "status", "-created_at"],
                condition=Q(is_archived=False),
                name="job_my_jobs_status",
            ),
            models.Index(fields=["status", "job_type"], name="job_status_type"),
            # The ops panels' and the retention purge's read: a workspace's finished jobs by time.
            models.Index(fields=["workspace", "finished_at"], name="job_finished"),
            # The ops failure list: one kind's unarchived failures, newest first, a page at a
            # time (without it the page reads every failed job in the window to sort them).
            models.Index(
                fields=["failure_kind", "-finished_at"],
                condition=Q(status="failed", is_archived=False),
                name="job_failure_list",
            ),
        ]

    def __str__(self):
        return f"{self.job_type} {str(self.id)[:8]} ({self.status})"

    @property
    def is_terminal(self):
        return self.status in TERMINAL

    @property
    def short_id(self):
        return str(self.id)[:8]

    @property
    def status_label(self):
        """The status as people read it: a draft a reviewer rejected reads "Rejected", not
        "Failed" (its status is ``failed``, its review state says why)."""
        if self.status == Status.FAILED and self.review_state == ReviewState.REJECTED:
            return ReviewState.REJECTED.label
        return self.get_status_display()

    # --- transitions: each only changes status; services do the rest and write the event ---

    @transition(field=status, source=Status.QUEUED, target=Status.RUNNING)
    def start(self):
        pass

    @transition(
        field=status, source=Status.RUNNING, target=Status.QUEUED, conditions=[attempts_remain]
    )
    def requeue(self):
        """A retryable attempt failed and another attempt is allowed."""

    @transition(field=status, source=Status.RUNNING, target=Status.NEEDS_REVIEW)
    def hold_for_review(self):
        pass

    @transition(field=status, source=[Status.RUNNING, Status.NEEDS_REVIEW], target=Status.COMPLETED)
    def complete(self):
        pass

    @transition(field=status, source=list(OPEN), target=Status.FAILED)
    def fail(self):
        pass

    @transition(field=status, source=list(OPEN), target=Status.CANCELED)
    def cancel(self):
        pass

    @transition(field=status, source=list(ACTIVE), target=Status.EXPIRED)
    def expire(self):
        pass

    @transition(
        field=status,
        source=list(RETRYABLE_FROM),
        target=Status.QUEUED,
        conditions=[attempts_remain, retrying_may_help],
    )
    def retry(self):
        pass

    @transition(
        field=status,
        source=Status.NEEDS_REVIEW,
        target=Status.QUEUED,
        conditions=[attempts_remain],
    )
    def send_back(self):
        pass

    @transition(field=status, source=Status.NEEDS_REVIEW, target=Status.RUNNING)
    def resume_run(self):
        """A tool run held for a person's decision on a call goes on."""


class Attempt(models.Model):
    """One provider call. Provider words (response id, provider status) live here only."""

    class State(models.TextChoices):
        DISPATCHING = "dispatching", "Dispatching"
        IN_FLIGHT = "in_flight", "In flight"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        ABANDONED = "abandoned", "Abandoned"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.DISPATCHING)
    instructions = models.TextField(blank=True)
    provider_response_id = models.CharField(max_length=80, null=True, blank=True, unique=True)
    provider_status = models.CharField(max_length=20, blank=True)
    request_id = models.CharField(max_length=80, blank=True)
    model = models.CharField(max_length=64, blank=True)
    service_tier = models.CharField(max_length=20, blank=True)
    output = models.JSONField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    price_version = models.CharField(max_length=20, blank=True)
    error_kind = models.CharField(max_length=12, choices=FailureKind.choices, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    is_stale = models.BooleanField(default=False, help_text="Result arrived after cancel/expiry.")
    polls = models.PositiveIntegerField(default=0)
    provider_seconds = models.FloatField(
        null=True,
        blank=True,
        help_text="How long the provider worked on a completed response, by its own clock.",
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="attempt_number_per_job"),
        ]
        indexes = [
            # the pacing's look at recent run times (jobs/execution/pacing.py)
            models.Index(
                fields=["finished_at"],
                condition=models.Q(provider_seconds__isnull=False),
                name="attempt_recent_runtime",
            ),
            # creates whose answer was never recorded: what a webhook for an unknown response
            # may belong to (jobs/execution/lanes.py, receive_webhook)
            models.Index(
                fields=["started_at"],
                condition=models.Q(
                    provider_response_id__isnull=True, state__in=["dispatching", "abandoned"]
                ),
                name="attempt_unrecorded_create",
            ),
        ]

    def __str__(self):
        return f"attempt {self.number} of {self.job_id}"

    @property
    def duration(self):
        if self.finished_at:
            return self.finished_at - self.started_at
        return None


# An attempt in these states may still produce a provider response: a job has at most one.
LIVE_ATTEMPT_STATES = (Attempt.State.DISPATCHING, Attempt.State.IN_FLIGHT)


class RunStep(models.Model):
    """One provider response of a tool run. The attempt's first response is step 1; each
    continuation that carries the calls' outputs back to the model is the next step. Usage and
    cost are recorded per response and summed on the attempt and the job."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="run_steps")
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField()
    response_id = models.CharField(max_length=80, unique=True)
    # continued by replaying the whole conversation: the provider refused previous_response_id
    replayed = models.BooleanField(default=False)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # set just before the continuation is created; a marker without a next step means a create
    # may have reached the provider unrecorded (``jobs.execution.tools``)
    continuing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "number"]
        constraints = [
            models.UniqueConstraint(fields=["attempt", "number"], name="run_step_per_attempt"),
        ]

    def __str__(self):
        return f"step {self.number} of {self.attempt}"


class ToolCall(models.Model):
    """One call the model asked for, run at most once (the row's state is the claim)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to run"
        AWAITING_APPROVAL = "awaiting_approval", "Waiting for approval"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"
        TIMED_OUT = "timed_out", "Approval timed out"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="tool_calls")
    step = models.ForeignKey(RunStep, on_delete=models.CASCADE, related_name="calls")
    call_id = models.CharField(max_length=80)
    name = models.CharField(max_length=64)
    authority_class = models.CharField(max_length=20, choices=AuthorityClass.choices)
    arguments = models.JSONField(default=dict, blank=True)
    # the model's arguments, when a person approved the call with edited ones (``arguments``)
    original_arguments = models.JSONField(null=True, blank=True)
    # what the model wrote, kept as it came when it is not a JSON object
    raw_arguments = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    # what goes back to the model as the call's output (the result, or the error or reason)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    tries = models.PositiveIntegerField(default=0)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "call_id"], name="tool_call_once_per_job"),
        ]

    def __str__(self):
        return f"{self.name} ({self.call_id}) of {self.job_id}"

    @property
    def has_output(self):
        return self.state in SETTLED_CALL_STATES


# A call in these states has its output for the model.
SETTLED_CALL_STATES = (
    ToolCall.State.SUCCEEDED,
    ToolCall.State.FAILED,
    ToolCall.State.REJECTED,
    ToolCall.State.TIMED_OUT,
)


class Artifact(models.Model):
    """An output of a job. Versions are never overwritten: an edit adds the next version."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        JSON = "json", "Structured JSON"
        EVIDENCE = "evidence", "Evidence"
        PARTIAL = "partial", "Partial output"
        FILE = "file", "File"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    attempt = models.ForeignKey(
        Attempt, on_delete=models.SET_NULL, null=True, blank=True, related_name="artifacts"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    version = models.PositiveIntegerField()
    text = models.TextField(blank=True)
    data = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    is_stale = models.BooleanField(default=False)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "kind", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "kind", "version"], name="artifact_version_per_kind"
            ),
        ]

    def __str__(self):
        return f"{self.kind} v{self.version} of {self.job_id}"


class AppendOnlyError(Exception):
    pass


class JobEvent(models.Model):
    """The append-only audit trail. Its integer id is also the cursor clients resume from."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    actor_label = models.CharField(max_length=80, help_text="Who acted: a username or system:…")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    message = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "id"], name="event_job_cursor")]

    def __str__(self):
        return f"{self.kind} on {self.job_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Job events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Job events are append-only.")

    @classmethod
    def redact_partial_text(cls, job_ids):
        """The one sanctioned change to existing events, for the retention purge only
        (``jobs.retention``): blank the streamed text of ``partial_output`` events of these
        jobs. The rows stay (id, kind, actor, time, sequence number); only ``data.text`` goes,
        replaced by ``"purged": true``. Returns how many events were redacted."""
        events = cls.objects.filter(job_id__in=job_ids, kind="partial_output")
        redacted = 0
        for pk, data in events.values_list("pk", "data"):
            if (data or {}).get("purged"):
                continue
            cleaned = {"seq": (data or {}).get("seq"), "purged": True}
            redacted += cls.objects.filter(pk=pk).update(data=cleaned)
        return redacted


class WebhookReceipt(models.Model):
    """One verified provider webhook, stored under a unique event id so a redelivery is a no-op."""

    event_id = models.CharField(max_length=100, unique=True)
    event_type = models.CharField(max_length=60)
    response_id = models.CharField(max_length=80, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.event_type} {self.event_id}"


class ProviderCallWindow(models.Model):
    """Provider call counts per ten-second bucket: the circuit breaker's (and ops page's) input."""

    bucket = models.DateTimeField(unique=True)
    ok = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.bucket:%H:%M:%S} ok={self.ok} failed={self.failed}"


class CircuitState(models.Model):
    """The provider circuit breaker (one row). Open: new background dispatch waits until
    ``opened_until``; then half-open lets a few jobs through (high priority first)."""

    class State(models.TextChoices):
        CLOSED = "closed", "Closed"
        OPEN = "open", "Open"

    state = models.CharField(max_length=8, choices=State.choices, default=State.CLOSED)
    opened_until = models.DateTimeField(null=True, blank=True)
    open_seconds = models.PositiveIntegerField(default=30)
    probes_left = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.state


class DispatchPause(models.Model):
    """An operator's hold on new background dispatch for one workspace (ops dashboard).

    While a row exists, the dispatcher leaves the workspace's queued jobs queued with a visible
    wait reason; in-flight work keeps being polled to its end. ``mode`` only changes what the
    ops page says: *pause* holds work, *drain* holds it so in-flight work can finish.
    """

    class Mode(models.TextChoices):
        PAUSE = "pause", "Paused"
        DRAIN = "drain", "Draining"

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="dispatch_pause"
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAUSE)
    reason = models.CharField(max_length=200, blank=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    paused_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.get_mode_display()}: {self.workspace}"


class PumpSlotQuerySet(models.QuerySet):
    def beating(self, *, within, now=None):
        """Slots held by a pump that beat in the last ``within`` (a timedelta). A slot its pump
        gave up (end of its run, its cluster stopping) is not beating, however fresh its beat."""
        return self.filter(heartbeat_at__gte=(now or timezone.now()) - within).exclude(owner="")


class PumpSlot(models.Model):
    """A poller loop's heartbeat. The watchdog restarts a slot whose pump stopped beating.
    ``successor`` is the pump waiting to take the slot over (``jobs.execution.run_pump``)."""

    slot = models.PositiveSmallIntegerField(primary_key=True)
    owner = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    successor = models.CharField(max_length=64, blank=True, default="")
    successor_at = models.DateTimeField(null=True, blank=True)

    objects = PumpSlotQuerySet.as_manager()

    def __str__(self):
        return f"slot {self.slot} ({self.owner})"
