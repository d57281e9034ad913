"""How an attempt ends: its final provider result applied exactly once, by one decision for
the one-job path (``finish_attempt``: webhooks, streams, the sync lane, the careful path) and
the pump's batch path (``finish_completed_batch``).

Both paths share what they decide and what they write:

- ``is_current``: a result counts only for the job's current attempt while the job is active;
  any other is kept as stale and changes nothing else;
- ``completion_for``: a completed model answer is held for review or completes the job, as the
  review router says;
- ``attempt_result`` and ``USAGE_FIELDS``: the attempt's columns a result sets, and the usage
  summed onto the job.

The batch path applies only the plain case (completed, current, in flight) in a few statements
for the whole batch, and hands every other item back to ``finish_attempt``.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django_fsm import can_proceed

from ..errors import ConcurrentUpdate
from ..models import ACTIVE, Artifact, Attempt, FailureKind, Job, RunStep, Status
from ..results import AttemptOutcome
from .attempts import add_artifact
from .base import (
    COMPLETION_FIELDS,
    completion_for,
    fresh_copy,
    move_job,
    record_events,
    record_note,
    refusal,
    retry_delay,
    unsaved_event,
)
from .batches import update_many

# Usage counters an attempt reports, summed onto its job.
USAGE_FIELDS = ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost")

# The attempt's columns its final result sets, in ``attempt_result``'s order.
ATTEMPT_RESULT_FIELDS = (
    *USAGE_FIELDS,
    "price_version",
    "provider_status",
    "model",
    "service_tier",
    "output",
    "error_kind",
    "error_code",
    "error_message",
    "provider_seconds",
    "finished_at",
)


def is_current(job, attempt):
    """Whether ``attempt``'s result may still move ``job``: it is the job's latest attempt, was
    not abandoned, and the job is still active (not canceled, expired or finished meanwhile)."""
    return (
        job.status in ACTIVE
        and attempt.number == job.attempt_count
        and attempt.state != Attempt.State.ABANDONED
    )


def attempt_result(attempt, outcome, now):
    """The attempt's columns its final result sets, keyed in ``ATTEMPT_RESULT_FIELDS`` order."""
    usage = outcome.usage
    return {
        **{name: getattr(usage, name) for name in USAGE_FIELDS},
        "price_version": usage.price_version,
        "provider_status": outcome.provider_status or attempt.provider_status,
        "model": outcome.model or attempt.model,
        "service_tier": outcome.service_tier,
        "output": outcome.output,
        "error_kind": outcome.failure_kind,
        "error_code": outcome.error_code,
        "error_message": outcome.error_message[:2000],
        "provider_seconds": outcome.provider_seconds,
        "finished_at": now,
    }


def evidence_data(outcome):
    """What hosted tools found, as an evidence artifact keeps it: each cited source with the
    words of the answer it supports, and the searches made."""
    return {
        "sources": [
            {
                "url": citation.url,
                "title": citation.title,
                "start": citation.start,
                "end": citation.end,
                "supports": outcome.text[citation.start : citation.end],
            }
            for citation in outcome.citations
        ],
        "searches": list(outcome.searches),
    }


# --- one attempt ---------------------------------------------------------------------------


def _record_result(job, attempt, outcome, now):
    """The attempt's result, its usage added to what the attempt and the job already hold (the
    earlier steps of a tool run; nothing for a one-response attempt)."""
    usage = outcome.usage
    added = {name: F(name) + getattr(usage, name) for name in USAGE_FIELDS}
    Attempt.objects.filter(pk=attempt.pk).update(
        **{**attempt_result(attempt, outcome, now), **added}
    )
    Job.objects.filter(pk=job.pk).update(**added)
    if attempt.provider_response_id:  # the last step of a tool run
        RunStep.objects.filter(response_id=attempt.provider_response_id).update(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost=usage.cost,
            finished_at=now,
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
    _record_result(job, attempt, outcome, timezone.now())
    stale = not is_current(job, attempt)
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
        if outcome.provider_status == "cancelled" and not outcome.text:
            # the provider confirms the stop that the job's cancel asked for: no result came
            record_note(
                job,
                "provider_stopped",
                actor=actor,
                message=f"The AI provider confirmed that attempt {attempt.number} stopped.",
                data={"attempt": attempt.number, "outcome": outcome.status},
            )
            return job
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
    if outcome.citations or outcome.searches:
        add_artifact(
            job=job,
            kind=Artifact.Kind.EVIDENCE,
            data=evidence_data(outcome),
            attempt=attempt,
            note="Sources the answer cites",
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
    return _fail(
        job,
        actor,
        from_status,
        kind,
        reason,
        data={"failure_kind": kind, "incomplete_reason": outcome.error_code},
        retryable=False,
        has_partial_output=bool(outcome.text),
        provider_finished_at=timezone.now(),
    )


def _finish_failed(job, attempt, outcome, actor, from_status):
    reason = outcome.error_message or "The model could not produce an answer."
    if outcome.retryable and job.attempt_count < job.attempt_limit:
        return _schedule_retry(job, attempt, outcome, actor, from_status)
    if outcome.retryable:
        reason = f"{reason} Steward tried {job.attempt_count} times."
    return _fail(
        job,
        actor,
        from_status,
        outcome.failure_kind or FailureKind.PROVIDER,
        reason,
        data={"failure_kind": outcome.failure_kind, "error_code": outcome.error_code},
        retryable=outcome.retryable,
    )


def _fail(job, actor, from_status, kind, reason, *, data, retryable, **changes):
    """The attempt's result ends the job as failed; a person is needed unless Steward may
    retry it."""
    return move_job(
        job,
        "fail",
        actor=actor,
        from_status=from_status,
        kind="failed",
        message=reason,
        data=data,
        failure_kind=kind,
        failure_reason=reason,
        failure_retryable=retryable,
        needs_human=not retryable,
        finished_at=timezone.now(),
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
        started_at=job.started_at,
        **changes,
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


# --- a pump's batch of completed attempts --------------------------------------------------


def finish_completed_batch(finished, *, actor="system:poller"):
    """``finish_attempt`` for a pump's batch of completed responses, in a few statements for
    the whole batch. ``finished`` holds ``(job, attempt, outcome)`` whose outcome completed.

    Only the plain case is applied here: the attempt is still in flight and is the job's
    current one, and the job is still active. The job rows are locked while the batch is
    written and each job still moves through its FSM transition (start, then complete or
    hold_for_review, as the review router decides), with one event each, exactly as
    ``finish_attempt`` would. Returns the items left for ``finish_attempt`` one at a time:
    duplicates, stale or superseded results, and the whole batch if a row changed under it."""
    try:
        with transaction.atomic():
            return _finish_completed_batch(finished, actor)
    except (ConcurrentUpdate, IntegrityError):
        return list(finished)  # something moved under the batch: the careful path decides


def _finish_completed_batch(finished, actor):
    ids = [job.pk for job, _, _ in finished]
    current = {j.pk: j for j in Job.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    stored = Attempt.objects.in_bulk([attempt.pk for _, attempt, _ in finished])
    plain, left = [], []
    for item in finished:
        job, attempt, outcome = current[item[0].pk], stored[item[1].pk], item[2]
        if attempt.state == Attempt.State.IN_FLIGHT and is_current(job, attempt):
            plain.append((job, attempt, outcome))
        else:
            left.append(item)
    if not plain:
        return left
    now = timezone.now()
    latest = dict(
        Artifact.objects.filter(job_id__in=[job.pk for job, _, _ in plain], kind=Artifact.Kind.TEXT)
        .values_list("job_id")
        .annotate(Max("version"))
    )
    attempt_rows, job_rows, artifacts, events = [], [], [], []
    for job, attempt, outcome in plain:
        from_status, usage = job.status, outcome.usage
        if job.status == Status.QUEUED:
            job.start()  # the provider finished before any poll saw it running
            job.started_at = job.started_at or now
        done = completion_for(job, now)
        if not can_proceed(getattr(job, done.transition)):
            raise ConcurrentUpdate(refusal(job, done.transition))
        getattr(job, done.transition)()
        attempt_rows.append([*attempt_result(attempt, outcome, now).values(), attempt.pk])
        job_rows.append(
            (
                job.status,
                *(done.changes.get(name) for name in COMPLETION_FIELDS),  # held: the end times NULL
                now,
                *(getattr(usage, name) for name in USAGE_FIELDS),
                job.pk,
                from_status,
            )
        )
        artifacts.append(
            Artifact(
                job=job,
                kind=Artifact.Kind.TEXT,
                version=(latest.get(job.pk) or 0) + 1,
                text=outcome.text,
                attempt=attempt,
                note="Model output",
            )
        )
        events.append(
            unsaved_event(
                job,
                done.kind,
                actor=actor,
                from_status=from_status,
                to_status=job.status,
                message=done.message,
            )
        )
    update_many(
        Attempt,
        ", ".join(f"{name} = %s" for name in ATTEMPT_RESULT_FIELDS)
        + f", state = '{Attempt.State.SUCCEEDED}', is_stale = FALSE WHERE id = %s",
        [*ATTEMPT_RESULT_FIELDS, "id"],
        attempt_rows,
    )
    assigned = ["status", *COMPLETION_FIELDS, "updated_at"]
    changed = update_many(
        Job,
        ", ".join(f"{name} = %s" for name in assigned)
        + "".join(f", {name} = {name} + %s" for name in USAGE_FIELDS)
        + " WHERE id = %s AND status = %s",
        [*assigned, *USAGE_FIELDS, "id", "status"],
        job_rows,
    )
    if changed != len(job_rows):  # a status moved although the rows were locked (SQLite)
        raise ConcurrentUpdate("A job changed while its result was applied.")
    Artifact.objects.bulk_create(artifacts)
    record_events(events)
    return left
