"""Every write to a job. One function per action; each runs in one transaction and leaves
exactly one ``JobEvent`` with its actor. Illegal moves raise ``jobs.errors`` exceptions whose
message is written for the person who tried.

``actor`` is a ``User`` for people, or a label such as ``"system:poller"`` for Steward itself.
"""

import hashlib
import json
import random
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from django_fsm import ConcurrentTransition, can_proceed

from accounts.selectors import role_in

from . import hooks
from .errors import (
    ConcurrentUpdate,
    InvalidJobInput,
    JobError,
    LaneNotAllowed,
    NotAMember,
    TransitionNotAllowed,
)
from .job_types import get_job_type
from .job_types.registry import RETAINING_LANES
from .models import (
    ACTIVE,
    LIVE_ATTEMPT_STATES,
    TERMINAL,
    Artifact,
    Attempt,
    FailureKind,
    Job,
    JobEvent,
    Priority,
    ReviewState,
    Status,
)
from .queue import enqueue
from .results import AttemptOutcome

VERBS = {
    "start": "started",
    "requeue": "queued again",
    "hold_for_review": "sent to review",
    "complete": "completed",
    "fail": "marked as failed",
    "cancel": "canceled",
    "expire": "expired",
    "retry": "retried",
    "send_back": "sent back for another attempt",
}


class IdempotencyKeyReused(JobError):
    """The same idempotency key arrived with a different request."""


# --- plumbing ------------------------------------------------------------------------------


def _actor_fields(actor):
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    return actor, actor.get_username()


def _event(job, kind, *, actor, from_status="", to_status="", message="", data=None):
    user, label = _actor_fields(actor)
    return JobEvent(
        job=job,
        kind=kind,
        actor=user,
        actor_label=label,
        from_status=from_status,
        to_status=to_status,
        message=message[:300],
        data=data or {},
    )


def record_event(job, kind, **fields):
    """Append one audit event; listeners hear about it once the transaction commits."""
    return record_events([_event(job, kind, **fields)])[0]


def record_events(events):
    """Append unsaved ``JobEvent`` rows in one insert (a pump starts dozens of attempts a
    turn); listeners hear about each once the transaction commits."""
    JobEvent.objects.bulk_create(events)
    transaction.on_commit(lambda: hooks.emit_after_commit(events))
    return events


def refusal(job, transition_name):
    """Why ``transition_name`` is not allowed now, in words for the person who asked."""
    verb = VERBS.get(transition_name, transition_name)
    method = getattr(job, transition_name)
    sources = method._django_fsm.transitions.keys()
    if job.status not in sources:
        return f"This job is {job.get_status_display().lower()}, so it can't be {verb}."
    return (
        f"This job has used all {job.attempt_limit} of its attempts, so it can't be {verb}. "
        "Submit it again as a new job."
    )


def _move(job, transition_name, *, actor, kind, message="", data=None, from_status=None, **changes):
    """Run one transition, apply ``changes``, save, and write the event. Call inside atomic."""
    from_status = from_status or job.status
    method = getattr(job, transition_name)
    if not can_proceed(method):
        raise TransitionNotAllowed(refusal(job, transition_name))
    method()
    for name, value in changes.items():
        setattr(job, name, value)
    try:
        job.save(update_fields=["status", "updated_at", *changes])
    except ConcurrentTransition:
        raise ConcurrentUpdate(
            "Someone else changed this job at the same moment; nothing was saved. "
            "Reload to see its current state."
        ) from None
    record_event(
        job,
        kind,
        actor=actor,
        from_status=from_status,
        to_status=job.status,
        message=message,
        data=data,
    )
    return job


def _fresh(job):
    """A fresh copy of the job, read inside the caller's transaction."""
    return Job.objects.get(pk=job.pk)


def _enqueue_on_commit(func_path, *args):
    transaction.on_commit(lambda: enqueue(func_path, *args))


def retry_delay(attempt_number, retry_after=None):
    """Exponential backoff with ±20 % jitter, capped at a minute, never shorter than Retry-After."""
    base = min(2.0 * 2 ** max(attempt_number - 1, 0), 60.0) * random.uniform(0.8, 1.2)
    return max(base, float(retry_after or 0))


def transition_job(*, job, transition, actor, kind, message="", data=None, **changes):
    """The one gateway other apps (review) use to move a job: a fresh read, the FSM transition,
    the field ``changes`` and one event, in the caller's transaction (or a new one)."""
    with transaction.atomic():
        return _move(
            _fresh(job), transition, actor=actor, kind=kind, message=message, data=data, **changes
        )


def reviewer_notes_for(job):
    """Notes reviewers left when sending the job back; the next attempt's instructions use them."""
    return reviewer_notes_by_job([job]).get(job.pk, [])


def reviewer_notes_by_job(jobs):
    """``reviewer_notes_for`` for many jobs in one query: job id -> notes, oldest first."""
    notes = {}
    sent_back = JobEvent.objects.filter(job__in=jobs, kind="sent_back").order_by("id")
    for job_id, text in sent_back.values_list("job_id", "data__notes"):
        if text:
            notes.setdefault(job_id, []).append(text)
    return notes


# --- submission ----------------------------------------------------------------------------


def _fingerprint(submitter, job_type, cleaned, priority):
    """What makes two submissions "the same request": a colleague reusing a key is not."""
    body = json.dumps(
        {
            "submitter": submitter.pk,
            "job_type": job_type,
            "input": cleaned,
            "priority": int(priority),
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(existing, fingerprint):
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This idempotency key was already used in this workspace for a different request. "
            "Use a new key for a new job."
        )
    existing.replayed = True
    return existing


def submit_job(
    *, workspace, submitter, job_type, input, priority=Priority.NORMAL, idempotency_key=None
):
    """Validate and record a new job, then enqueue its dispatch once the record is committed.

    Idempotent by ``idempotency_key`` within the workspace: the same key with the same request
    returns the original job (``job.replayed`` is True); with a different request it raises
    ``IdempotencyKeyReused``. Concurrent duplicates create exactly one job.
    """
    spec = get_job_type(job_type)
    if role_in(submitter, workspace.id) is None:
        raise NotAMember("You are not a member of this workspace.")
    if workspace.zero_data_retention and spec.lane in RETAINING_LANES:
        raise LaneNotAllowed(
            f"{workspace.name} requires zero data retention, and {spec.title} runs in the "
            f"{spec.lane} lane, which keeps data at the provider for about ten minutes."
        )
    cleaned, errors = spec.clean_input(input)
    if errors:
        raise InvalidJobInput(errors)
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise InvalidJobInput({"idempotency_key": ["Use a key of 1 to 255 characters."]})
    priority = Priority(int(priority))
    fingerprint = _fingerprint(submitter, spec.name, cleaned, priority)
    if idempotency_key:
        existing = Job.objects.filter(workspace=workspace, idempotency_key=idempotency_key).first()
        if existing:
            return _replay(existing, fingerprint)

    now = timezone.now()
    try:
        with transaction.atomic():
            job = Job.objects.create(
                workspace=workspace,
                submitter=submitter,
                job_type=spec.name,
                authority_class=spec.authority_class,
                lane=spec.lane,
                model=spec.model,
                priority=priority,
                input=cleaned,
                input_summary=spec.summarize(cleaned),
                is_sensitive=spec.is_sensitive(cleaned),
                idempotency_key=idempotency_key or None,
                idempotency_fingerprint=fingerprint,
                expires_at=now + spec.deadline,
                attempt_limit=spec.attempt_limit,
                next_poll_at=now,
            )
            record_event(
                job,
                "submitted",
                actor=submitter,
                to_status=job.status,
                message=f"{spec.title} submitted.",
            )
            if spec.lane != "sync":
                _enqueue_on_commit("jobs.tasks.dispatch_job", str(job.pk))
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = Job.objects.get(workspace=workspace, idempotency_key=idempotency_key)
        return _replay(existing, fingerprint)
    job.replayed = False
    return job


# --- user and system controls --------------------------------------------------------------


def _stop(job, transition, *, actor, kind, message, **changes):
    """Cancel or expire: move the job, drop its lease, and cancel in-flight provider work
    after commit (a result that still arrives is kept as stale, never released)."""
    job = _fresh(job)
    in_flight = job.attempts.filter(state=Attempt.State.IN_FLIGHT).exists()
    _move(
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
        _enqueue_on_commit("jobs.tasks.cancel_at_provider", str(job.pk))
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
    job = _fresh(job)
    _move(
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
    _enqueue_on_commit("jobs.tasks.dispatch_job", str(job.pk))
    return job


@transaction.atomic
def archive_job(*, job, actor):
    """Hide a finished job from lists. Not a status change; the job keeps its status."""
    job = _fresh(job)
    if job.status not in TERMINAL:
        raise TransitionNotAllowed(
            f"This job is {job.get_status_display().lower()}; only finished jobs can be archived."
        )
    if job.is_archived:
        raise TransitionNotAllowed("This job is already archived.")
    Job.objects.filter(pk=job.pk).update(is_archived=True, archived_at=timezone.now())
    job.refresh_from_db()
    record_event(
        job,
        "archived",
        actor=actor,
        from_status=job.status,
        to_status=job.status,
        message="Archived.",
    )
    return job


@transaction.atomic
def fail_job(
    *, job, actor, kind, reason, retryable=False, has_partial_output=False, needs_human=False
):
    """Fail the job with a kind and a reason a user can read."""
    job = _fresh(job)
    if kind not in FailureKind.values:
        raise ValueError(f"unknown failure kind {kind!r}")
    _move(
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
def begin_attempts(*, starts, actor="system:dispatcher"):
    """Open the next attempt of each ``(job, instructions)`` in ``starts``, in one transaction
    and a handful of statements whatever their number. Returns ``(started, refused)``:
    ``(job, attempt)`` pairs, and ``(job, reason)`` for jobs that may not start now.

    A job is refused unless it is queued, has attempts left and has no other attempt still
    dispatching or in flight: a pump whose batch outlived its lease may still be working on a
    job another pump has claimed since, and two live attempts would mean two provider
    responses for one job. The job rows are locked (in id order, so two dispatchers cannot
    deadlock) so two dispatchers cannot both see "no live attempt"."""
    ids = [job.pk for job, _ in starts]
    locked = Job.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    current = {job.pk: job for job in locked}
    live = set(
        Attempt.objects.filter(job_id__in=ids, state__in=LIVE_ATTEMPT_STATES).values_list(
            "job_id", flat=True
        )
    )
    started, refused, events = [], [], []
    for job, instructions in starts:
        fresh = current[job.pk]
        if fresh.status != Status.QUEUED:
            refused.append((job, f"Only queued jobs start attempts (this one is {fresh.status})."))
        elif fresh.pk in live:
            refused.append((job, "This job already has an attempt under way."))
        elif fresh.attempt_count >= fresh.attempt_limit:
            refused.append((job, refusal(fresh, "retry")))
        else:
            number = job.attempt_count = fresh.attempt_count + 1
            attempt = Attempt(job=job, number=number, instructions=instructions, model=job.model)
            started.append((job, attempt))
            events.append(
                _event(
                    job,
                    "attempt_started",
                    actor=actor,
                    from_status=fresh.status,
                    to_status=fresh.status,
                    message=f"Attempt {number} started.",
                    data={"attempt": number},
                )
            )
    if started:
        # every row is locked and checked above, so one relative update numbers them all
        Job.objects.filter(pk__in=[job.pk for job, _ in started]).update(
            attempt_count=F("attempt_count") + 1, wait_reason=""
        )
        Attempt.objects.bulk_create([attempt for _, attempt in started])
        record_events(events)
    return started, refused


@transaction.atomic
def record_dispatch(*, attempt, response_id, provider_status, request_id="", next_poll_at=None):
    """The provider accepted the attempt: store its response id and when to look again."""
    record_dispatches(
        [(attempt, response_id, provider_status, request_id)], next_poll_at=next_poll_at
    )
    attempt.refresh_from_db()
    return attempt


@transaction.atomic
def record_dispatches(accepted, *, next_poll_at=None, release=False):
    """The provider accepted these attempts: ``accepted`` holds ``(attempt, response_id,
    provider_status, request_id)``. Stores each response id, sets when to look at the job
    again and, with ``release``, drops the lease the job's dispatcher held (``attempt.job``'s
    ``lease_owner``; a lease another worker took since stays), in one statement per table.
    "started" is when the model got the work, even while the provider still queues it."""
    now = timezone.now()
    next_poll_at = next_poll_at or now
    attempt_table, job_table = Attempt._meta.db_table, Job._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {attempt_table} SET provider_response_id = %s, provider_status = %s, "
            "request_id = %s, state = %s WHERE id = %s",
            [
                (response_id, provider_status, request_id, Attempt.State.IN_FLIGHT, attempt.pk)
                for attempt, response_id, provider_status, request_id in accepted
            ],
        )
        released = "CASE WHEN lease_owner = %s THEN '' ELSE lease_owner END"
        cursor.executemany(
            f"UPDATE {job_table} SET next_poll_at = %s, started_at = COALESCE(started_at, %s), "
            f"lease_expires_at = CASE WHEN lease_owner = %s THEN NULL ELSE lease_expires_at END, "
            f"lease_owner = {released} WHERE id = %s",
            [
                (
                    _db_time(next_poll_at),
                    _db_time(now),
                    owner,
                    owner,
                    _db_id(attempt.job_id),
                )
                for attempt, *_ in accepted
                for owner in [attempt.job.lease_owner if release else None]
            ],
        )
    jobs = Job.objects.only("id", "status").in_bulk([attempt.job_id for attempt, *_ in accepted])
    record_events(
        [
            _event(
                jobs[attempt.job_id],
                "dispatched",
                actor="system:dispatcher",
                from_status=jobs[attempt.job_id].status,
                to_status=jobs[attempt.job_id].status,
                message="Sent to the model.",
                data={"attempt": attempt.number, "request_id": request_id},
            )
            for attempt, _, _, request_id in accepted
        ]
    )


def _db_time(value):
    return Job._meta.get_field("next_poll_at").get_db_prep_value(value, connection)


def _db_id(value):
    return Job._meta.pk.get_db_prep_value(value, connection)


@transaction.atomic
def mark_running(*, job, actor="system:poller"):
    """The model has started working on the job."""
    job = _fresh(job)
    _move(
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
    user, _ = _actor_fields(actor)
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
        return _fresh(job)  # already applied: a duplicate poll or webhook
    job = _fresh(job)
    _add_usage(job, attempt, outcome)
    stale = (
        job.status not in ACTIVE
        or attempt.number != job.attempt_count
        or attempt.state == Attempt.State.ABANDONED
    )
    new_state = Attempt.State.SUCCEEDED if outcome.status == "completed" else Attempt.State.FAILED
    Attempt.objects.filter(pk=attempt.pk).update(state=new_state, is_stale=stale)
    job = _fresh(job)
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
        record_event(
            job,
            "stale_result",
            actor=actor,
            from_status=job.status,
            to_status=job.status,
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
        if (
            attempt.state == Attempt.State.IN_FLIGHT
            and job.status in ACTIVE
            and attempt.number == job.attempt_count
        ):
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
        job.review_state = hooks.review_state_for(job)
        held = job.review_state in (ReviewState.PENDING, ReviewState.ESCALATED)
        transition = "hold_for_review" if held else "complete"
        if not can_proceed(getattr(job, transition)):
            raise ConcurrentUpdate(refusal(job, transition))
        getattr(job, transition)()
        done = None if held else now
        attempt_rows.append(
            (
                usage.input_tokens,
                usage.cached_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                usage.cost,
                usage.price_version,
                outcome.provider_status or attempt.provider_status,
                outcome.model or attempt.model,
                outcome.service_tier,
                outcome.output,
                now,
                outcome.failure_kind,
                outcome.error_code,
                outcome.error_message[:2000],
                attempt.pk,
            )
        )
        job_rows.append(
            (
                job.status,
                job.review_state,
                now,
                job.started_at,
                done,
                done,
                now,
                usage.input_tokens,
                usage.cached_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
                usage.cost,
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
            _event(
                job,
                "needs_review" if held else "completed",
                actor=actor,
                from_status=from_status,
                to_status=job.status,
                message="The draft is ready and waits for a reviewer." if held else "Finished.",
            )
        )
    _update_many(
        Attempt,
        "input_tokens = %s, cached_tokens = %s, output_tokens = %s, reasoning_tokens = %s, "
        "cost = %s, price_version = %s, provider_status = %s, model = %s, service_tier = %s, "
        "output = %s, finished_at = %s, error_kind = %s, error_code = %s, error_message = %s, "
        f"state = '{Attempt.State.SUCCEEDED}', is_stale = FALSE WHERE id = %s",
        [
            "input_tokens",
            "cached_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost",
            "price_version",
            "provider_status",
            "model",
            "service_tier",
            "output",
            "finished_at",
            "error_kind",
            "error_code",
            "error_message",
            "id",
        ],
        attempt_rows,
    )
    changed = _update_many(
        Job,
        "status = %s, review_state = %s, provider_finished_at = %s, started_at = %s, "
        "completed_at = %s, finished_at = %s, updated_at = %s, next_poll_at = NULL, "
        "lease_owner = '', lease_expires_at = NULL, input_tokens = input_tokens + %s, "
        "cached_tokens = cached_tokens + %s, output_tokens = output_tokens + %s, "
        "reasoning_tokens = reasoning_tokens + %s, cost = cost + %s "
        "WHERE id = %s AND status = %s",
        [
            "status",
            "review_state",
            "provider_finished_at",
            "started_at",
            "completed_at",
            "finished_at",
            "updated_at",
            "input_tokens",
            "cached_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost",
            "id",
            "status",
        ],
        job_rows,
    )
    if changed != len(job_rows):  # a status moved although the rows were locked (SQLite)
        raise ConcurrentUpdate("A job changed while its result was applied.")
    Artifact.objects.bulk_create(artifacts)
    record_events(events)
    return left


def _update_many(model, assignments, fields, rows):
    """One ``UPDATE`` statement run for every row of ``rows`` (psycopg pipelines them); values
    are prepared by the named model fields, as the ORM would. Returns the rows changed."""
    prepare = [model._meta.get_field(name) for name in fields]
    prepared = [
        [
            field.get_db_prep_save(value, connection)
            for field, value in zip(prepare, row, strict=True)
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {model._meta.db_table} SET {assignments}", prepared)
        return cursor.rowcount


def _finish_completed(job, attempt, outcome, actor, from_status):
    now = timezone.now()
    add_artifact(
        job=job, kind=Artifact.Kind.TEXT, text=outcome.text, attempt=attempt, note="Model output"
    )
    review_state = hooks.review_state_for(job)
    common = dict(
        provider_finished_at=now,
        review_state=review_state,
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
        started_at=job.started_at,
    )
    if review_state in (ReviewState.PENDING, ReviewState.ESCALATED):
        return _move(
            job,
            "hold_for_review",
            actor=actor,
            from_status=from_status,
            kind="needs_review",
            message="The draft is ready and waits for a reviewer.",
            **common,
        )
    return _move(
        job,
        "complete",
        actor=actor,
        from_status=from_status,
        kind="completed",
        message="Finished.",
        completed_at=now,
        finished_at=now,
        **common,
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
    return _move(
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
    return _move(
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
        return _move(
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
    record_event(
        job,
        "retry_scheduled",
        actor=actor,
        from_status=job.status,
        to_status=job.status,
        message=message,
        data=data,
    )
    return _fresh(job)


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
            record_event(
                job,
                "partial_output",
                actor="system:stream",
                from_status=job.status,
                to_status=job.status,
                data={"seq": cursor, "text": text},
            )
            Job.objects.filter(pk=job.pk).update(has_partial_output=True)
    return True


@transaction.atomic
def move_to_background_lane(*, job, reason):
    """A sync-lane job that timed out continues in the background lane."""
    Job.objects.filter(pk=job.pk).update(lane="background")
    job = _fresh(job)
    record_event(
        job,
        "lane_changed",
        actor="system:sync",
        from_status=job.status,
        to_status=job.status,
        message="It took longer than a quick answer allows, so it continues in the background.",
        data={"from": "sync", "to": "background", "reason": reason},
    )
    return job
