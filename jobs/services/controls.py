"""What people and Steward's sweeps do to a job: cancel, expire, retry, archive, fail."""

from django.db import transaction
from django.utils import timezone

from ..errors import (
    TransitionNotAllowed,
)
from ..models import (
    TERMINAL,
    Attempt,
    FailureKind,
    Job,
    ReviewState,
)
from .base import dispatch_on_commit, enqueue_on_commit, fresh_copy, move_job, record_note

# --- user and system controls --------------------------------------------------------------


def _stop(job, transition, *, actor, kind, message, **changes):
    """Cancel or expire: move the job, drop its lease, and cancel in-flight provider work
    after commit (a result that still arrives is kept as stale, never released)."""
    job = fresh_copy(job)
    in_flight = job.attempts.filter(state=Attempt.State.IN_FLIGHT).exists()
    move_job(
        job,
        transition,
        actor=actor,
        kind=kind,
        message=message,
        finished_at=timezone.now(),
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
        **changes,
    )
    if in_flight:
        enqueue_on_commit("jobs.tasks.cancel_at_provider", str(job.pk))
    return job


@transaction.atomic
def cancel_job(*, job, actor, reason=""):
    """Stop the job at a user's (or the system's) request."""
    return _stop(job, "cancel", actor=actor, kind="canceled", message=reason or "Canceled.")


@transaction.atomic
def expire_job(*, job, actor="system:expiry"):
    """The job missed its deadline."""
    return _stop(
        job,
        "expire",
        actor=actor,
        kind="expired",
        message="The job passed its deadline before it finished.",
        failure_kind=FailureKind.TIMEOUT,
        failure_reason="It did not finish before its deadline.",
        failure_retryable=True,
    )


@transaction.atomic
def retry_job(*, job, actor):
    """Queue a failed, canceled or expired job again as a new attempt (if attempts remain)."""
    job = fresh_copy(job)
    move_job(
        job,
        "retry",
        actor=actor,
        kind="retried",
        message="Queued again for a new attempt.",
        next_poll_at=timezone.now(),
        finished_at=None,
        failure_kind="",
        failure_reason="",
        failure_retryable=False,
        needs_human=False,
        wait_reason="",
        review_state=ReviewState.NONE,
    )
    dispatch_on_commit(job)
    return job


@transaction.atomic
def archive_job(*, job, actor):
    """Hide a finished job from lists. Not a status change; the job keeps its status."""
    job = fresh_copy(job)
    if job.status not in TERMINAL:
        raise TransitionNotAllowed(
            f"This job is {job.get_status_display().lower()}; only finished jobs can be archived."
        )
    if job.is_archived:
        raise TransitionNotAllowed("This job is already archived.")
    Job.objects.filter(pk=job.pk).update(is_archived=True, archived_at=timezone.now())
    job.refresh_from_db()
    record_note(
        job,
        "archived",
        actor=actor,
        message="Archived.",
    )
    return job


@transaction.atomic
def fail_job(
    *, job, actor, kind, reason, retryable=False, has_partial_output=False, needs_human=False
):
    """Fail the job with a kind and a reason a user can read."""
    job = fresh_copy(job)
    if kind not in FailureKind.values:
        raise ValueError(f"unknown failure kind {kind!r}")
    move_job(
        job,
        "fail",
        actor=actor,
        kind="failed",
        message=reason,
        data={"failure_kind": kind, "retryable": retryable},
        failure_kind=kind,
        failure_reason=reason,
        failure_retryable=retryable,
        has_partial_output=has_partial_output or job.has_partial_output,
        needs_human=needs_human,
        finished_at=timezone.now(),
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
    )
    return job
