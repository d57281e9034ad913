"""The provider lane's writes for one attempt: begin, dispatch, usage, results, retries."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from ..errors import (
    ConcurrentUpdate,
    TransitionNotAllowed,
)
from ..models import (
    ACTIVE,
    Artifact,
    Attempt,
    FailureKind,
    Job,
    Status,
)
from ..results import AttemptOutcome
from .base import actor_fields, completion_for, fresh_copy, move_job, record_note, retry_delay
from .batches import begin_attempts, record_dispatches

# --- the provider lane's writes ------------------------------------------------------------


@transaction.atomic
def begin_attempt(*, job, instructions, actor="system:dispatcher"):
    """Open the next attempt before the provider is called, so a crash leaves a trace.
    Raises ``TransitionNotAllowed`` with the reason when the job may not start one now."""
    started, refused = begin_attempts(starts=[(job, instructions)], actor=actor)
    if refused:
        raise TransitionNotAllowed(refused[0][1])
    return started[0][1]


@transaction.atomic
def record_dispatch(*, attempt, response_id, provider_status, request_id="", next_poll_at=None):
    """The provider accepted the attempt: store its response id and when to look again."""
    record_dispatches(
        [(attempt, response_id, provider_status, request_id)], next_poll_at=next_poll_at
    )
    attempt.refresh_from_db()
    return attempt


@transaction.atomic
def mark_running(*, job, actor="system:poller"):
    """The model has started working on the job."""
    job = fresh_copy(job)
    move_job(
        job,
        "start",
        actor=actor,
        kind="running",
        message="The model is working on it.",
        started_at=job.started_at or timezone.now(),
    )
    return job


def _next_version(job, kind):
    latest = job.artifacts.filter(kind=kind).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def add_artifact(*, job, kind, text="", data=None, actor=None, attempt=None, note="", stale=False):
    """Add the next version of an artifact kind (an edit never overwrites an earlier version)."""
    user, _ = actor_fields(actor)
    for _ in range(3):
        try:
            with transaction.atomic():
                return Artifact.objects.create(
                    job=job,
                    kind=kind,
                    version=_next_version(job, kind),
                    text=text,
                    data=data,
                    created_by=user,
                    attempt=attempt,
                    note=note,
                    is_stale=stale,
                )
        except IntegrityError:  # two writers took the same version number; take the next one
            continue
    raise ConcurrentUpdate("Could not save the new version; please try again.")


def _add_usage(job, attempt, outcome):
    usage = outcome.usage
    Attempt.objects.filter(pk=attempt.pk).update(
        input_tokens=usage.input_tokens,
        cached_tokens=usage.cached_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cost=usage.cost,
        price_version=usage.price_version,
        provider_status=outcome.provider_status or F("provider_status"),
        model=outcome.model or F("model"),
        service_tier=outcome.service_tier,
        output=outcome.output,
        error_kind=outcome.failure_kind,
        error_code=outcome.error_code,
        error_message=outcome.error_message[:2000],
        provider_seconds=outcome.provider_seconds,
        finished_at=timezone.now(),
    )
    Job.objects.filter(pk=job.pk).update(
        input_tokens=F("input_tokens") + usage.input_tokens,
        cached_tokens=F("cached_tokens") + usage.cached_tokens,
        output_tokens=F("output_tokens") + usage.output_tokens,
        reasoning_tokens=F("reasoning_tokens") + usage.reasoning_tokens,
        cost=F("cost") + usage.cost,
    )


@transaction.atomic
def finish_attempt(*, job, attempt, outcome: AttemptOutcome, actor="system:poller"):
    """Apply an attempt's final provider result exactly once.

    Records usage and cost on the attempt and the job, stores the output as an artifact, and
    moves the job: to review or completed (by the review router), to a scheduled retry for a
    retryable failure with attempts left, or to failed. A result for a job that was canceled or
    expired meanwhile (or for a superseded attempt) is kept as a stale artifact and changes
    nothing else. Returns the job.
    """
    attempt = Attempt.objects.select_related(None).get(pk=attempt.pk)
    if attempt.state in (Attempt.State.SUCCEEDED, Attempt.State.FAILED):
        return fresh_copy(job)  # already applied: a duplicate poll or webhook
    job = fresh_copy(job)
    _add_usage(job, attempt, outcome)
    stale = (
        job.status not in ACTIVE
        or attempt.number != job.attempt_count
        or attempt.state == Attempt.State.ABANDONED
    )
    new_state = Attempt.State.SUCCEEDED if outcome.status == "completed" else Attempt.State.FAILED
    Attempt.objects.filter(pk=attempt.pk).update(state=new_state, is_stale=stale)
    job = fresh_copy(job)
    if stale:
        if outcome.text:
            add_artifact(
                job=job,
                kind=Artifact.Kind.TEXT,
                text=outcome.text,
                attempt=attempt,
                stale=True,
                note=f"Arrived after the job was {job.status}.",
            )
        record_note(
            job,
            "stale_result",
            actor=actor,
            message="A result arrived after the job stopped; it is kept but not released.",
            data={"attempt": attempt.number, "outcome": outcome.status},
        )
        return job
    from_status = job.status
    if job.status == Status.QUEUED and outcome.status != "failed":
        job.start()  # the provider finished before any poll saw it running
        job.started_at = job.started_at or timezone.now()
    finish = {
        "completed": _finish_completed,
        "incomplete": _finish_incomplete,
    }.get(outcome.status, _finish_failed)
    return finish(job, attempt, outcome, actor, from_status)


def _finish_completed(job, attempt, outcome, actor, from_status):
    now = timezone.now()
    add_artifact(
        job=job, kind=Artifact.Kind.TEXT, text=outcome.text, attempt=attempt, note="Model output"
    )
    done = completion_for(job, now)
    return move_job(
        job,
        done.transition,
        actor=actor,
        from_status=from_status,
        kind=done.kind,
        message=done.message,
        **done.changes,
    )


def _finish_incomplete(job, attempt, outcome, actor, from_status):
    if outcome.text:
        add_artifact(
            job=job,
            kind=Artifact.Kind.PARTIAL,
            text=outcome.text,
            attempt=attempt,
            note="Partial output (the model stopped early)",
        )
    if outcome.error_code == "content_filter":
        kind, reason = (
            FailureKind.POLICY,
            (
                "The model stopped because the content filter blocked part of the answer. "
                "Retrying the same input is unlikely to help."
            ),
        )
    else:
        kind, reason = (
            FailureKind.PROVIDER,
            (
                "The model stopped early because the answer hit its length limit. "
                "Any partial answer is kept; a person should decide what to do next."
            ),
        )
    return move_job(
        job,
        "fail",
        actor=actor,
        from_status=from_status,
        kind="failed",
        message=reason,
        data={"failure_kind": kind, "incomplete_reason": outcome.error_code},
        failure_kind=kind,
        failure_reason=reason,
        failure_retryable=False,
        has_partial_output=bool(outcome.text),
        needs_human=True,
        provider_finished_at=timezone.now(),
        finished_at=timezone.now(),
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
        started_at=job.started_at,
    )


def _finish_failed(job, attempt, outcome, actor, from_status):
    reason = outcome.error_message or "The model could not produce an answer."
    if outcome.retryable and job.attempt_count < job.attempt_limit:
        return _schedule_retry(job, attempt, outcome, actor, from_status)
    if outcome.retryable:
        reason = f"{reason} Steward tried {job.attempt_count} times."
    return move_job(
        job,
        "fail",
        actor=actor,
        from_status=from_status,
        kind="failed",
        message=reason,
        data={"failure_kind": outcome.failure_kind, "error_code": outcome.error_code},
        failure_kind=outcome.failure_kind or FailureKind.PROVIDER,
        failure_reason=reason,
        failure_retryable=outcome.retryable,
        needs_human=not outcome.retryable,
        finished_at=timezone.now(),
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
        started_at=job.started_at,
    )


def _schedule_retry(job, attempt, outcome, actor, from_status):
    delay = retry_delay(attempt.number, outcome.retry_after)
    due = timezone.now() + timedelta(seconds=delay)
    data = {"attempt": attempt.number, "error_code": outcome.error_code, "delay": round(delay, 2)}
    message = f"Attempt {attempt.number} hit a temporary problem; trying again shortly."
    if job.status == Status.RUNNING:
        return move_job(
            job,
            "requeue",
            actor=actor,
            from_status=from_status,
            kind="retry_scheduled",
            message=message,
            data=data,
            next_poll_at=due,
            lease_owner="",
            lease_expires_at=None,
            started_at=job.started_at,
        )
    Job.objects.filter(pk=job.pk).update(next_poll_at=due, lease_owner="", lease_expires_at=None)
    record_note(
        job,
        "retry_scheduled",
        actor=actor,
        message=message,
        data=data,
    )
    return fresh_copy(job)


def save_stream_progress(*, job, text, cursor, owner, lease):
    """Save a batch of streamed text with its cursor, in one transaction, while ``owner`` still
    holds the job. Returns False (saving nothing) when the job stopped or changed hands."""
    now = timezone.now()
    with transaction.atomic():
        held = Job.objects.filter(pk=job.pk, status__in=ACTIVE, lease_owner=owner).update(
            stream_cursor=cursor, lease_expires_at=now + lease
        )
        if not held:
            return False
        if text:
            record_note(
                job,
                "partial_output",
                actor="system:stream",
                data={"seq": cursor, "text": text},
            )
            Job.objects.filter(pk=job.pk).update(has_partial_output=True)
    return True


@transaction.atomic
def move_to_background_lane(*, job, reason):
    """A sync-lane job that timed out continues in the background lane."""
    Job.objects.filter(pk=job.pk).update(lane="background")
    job = fresh_copy(job)
    record_note(
        job,
        "lane_changed",
        actor="system:sync",
        message="It took longer than a quick answer allows, so it continues in the background.",
        data={"from": "sync", "to": "background", "reason": reason},
    )
    return job
