"""The job writes the review step asks for: one service per outcome of a decision.

``review`` decides (who may act, claims, decisions, the release record) and calls these to
change the job; it never writes a ``Job`` row itself. Each service runs in the caller's
transaction (or its own), re-reads the job, moves it through its FSM transition where the
status changes, and leaves exactly one event with the reviewer (or release) as actor.
"""

from django.db import transaction
from django.utils import timezone

from ..models import FailureKind, Job, ReviewState, ToolCall
from .base import dispatch_on_commit, fresh_copy, move_job, record_note


def _same_status(job, kind, *, actor, message, data, **changes):
    """A review outcome that leaves the status as it is: the fields and one event."""
    Job.objects.filter(pk=job.pk).update(**changes)
    job = fresh_copy(job)
    record_note(job, kind, actor=actor, message=message, data=data)
    return job


@transaction.atomic
def approve_job(*, job, actor, message, data=None):
    """A reviewer approved a draft that needs no further action: the job completes."""
    now = timezone.now()
    return move_job(
        fresh_copy(job),
        "complete",
        actor=actor,
        kind="approved",
        message=message,
        data=data,
        review_state=ReviewState.APPROVED,
        reviewed_at=now,
        completed_at=now,
        finished_at=now,
    )


@transaction.atomic
def approve_for_release(*, job, actor, message, data=None):
    """A reviewer approved an external effect: the job stays in review, approved, until its
    action has run (``complete_release``) or failed (``fail_release``)."""
    return _same_status(
        job,
        "approved",
        actor=actor,
        message=message,
        data=data,
        review_state=ReviewState.APPROVED,
        reviewed_at=timezone.now(),
    )


@transaction.atomic
def escalate_job(*, job, actor, message, data=None):
    """A reviewer handed the draft to the workspace's admins; only an admin may act on it now."""
    escalated = ReviewState.ESCALATED
    return _same_status(
        job, "escalated", actor=actor, message=message, data=data, review_state=escalated
    )


@transaction.atomic
def reject_job(*, job, actor, reason, data=None):
    """A reviewer rejected the draft (or stopped a tool run waiting for approval): the job
    fails with kind ``review`` and the reason; no call waiting for approval will run."""
    now = timezone.now()
    explanation = f"A reviewer rejected the draft: {reason}"
    waiting = ToolCall.objects.filter(job=job, state=ToolCall.State.AWAITING_APPROVAL)
    if waiting.exists():
        explanation = f"A reviewer stopped the run: {reason}"
        waiting.update(state=ToolCall.State.REJECTED, decision_note=reason, finished_at=now)
    return move_job(
        fresh_copy(job),
        "fail",
        actor=actor,
        kind="rejected",
        message=explanation,
        data={"failure_kind": FailureKind.REVIEW, "reason": reason, **(data or {})},
        failure_kind=FailureKind.REVIEW,
        failure_reason=explanation,
        failure_retryable=False,
        needs_human=False,
        review_state=ReviewState.REJECTED,
        reviewed_at=now,
        finished_at=now,
    )


@transaction.atomic
def send_back_job(*, job, actor, notes, data=None):
    """A reviewer sent the draft back: the job is queued again for an attempt whose
    instructions carry ``notes`` (``reviewer_notes_for`` reads them from this event), and is
    handed to the dispatcher once the transaction commits."""
    now = timezone.now()
    job = move_job(
        fresh_copy(job),
        "send_back",
        actor=actor,
        kind="sent_back",
        message=f"Sent back for another attempt: {notes}",
        data={"notes": notes, **(data or {})},
        review_state=ReviewState.SENT_BACK,
        reviewed_at=now,
        next_poll_at=now,
    )
    dispatch_on_commit(job)
    return job


@transaction.atomic
def complete_release(*, job, actor, message, result):
    """An approved external effect's action ran: the job completes, with the action's result."""
    now = timezone.now()
    return move_job(
        fresh_copy(job),
        "complete",
        actor=actor,
        kind="released",
        message=message,
        data={"result": result},
        completed_at=now,
        finished_at=now,
    )


@transaction.atomic
def fail_release(*, job, actor, reason):
    """An approved external effect's action failed: the job fails with kind ``tool`` and waits
    for a person; the approved draft stays."""
    return move_job(
        fresh_copy(job),
        "fail",
        actor=actor,
        kind="failed",
        message=reason,
        data={"failure_kind": FailureKind.TOOL, "stage": "release"},
        failure_kind=FailureKind.TOOL,
        failure_reason=reason,
        failure_retryable=False,
        needs_human=True,
        finished_at=timezone.now(),
    )
