"""The pump's writes for a batch of attempts, in a few statements whatever its size."""

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from django_fsm import can_proceed

from ..errors import (
    ConcurrentUpdate,
)
from ..models import (
    ACTIVE,
    LIVE_ATTEMPT_STATES,
    Artifact,
    Attempt,
    Job,
    Status,
)
from .base import COMPLETION_FIELDS, completion_for, record_events, refusal, unsaved_event


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
                unsaved_event(
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
def mark_running_batch(jobs, *, actor="system:poller"):
    """The model has started working on each of ``jobs``: queued → running, in a few
    statements whatever their number. Each job goes through its ``start`` transition and gets
    its ``running`` event, as ``mark_running`` gives one job. The rows are locked in id order;
    a job no longer queued (canceled meanwhile, or moved by another poller) is left as it is.
    Returns the ids of the jobs that moved."""
    locked = Job.objects.select_for_update().filter(pk__in=[job.pk for job in jobs])
    now = timezone.now()
    rows, events = [], []
    for job in locked.filter(status=Status.QUEUED).defer("input").order_by("pk"):
        job.start()
        job.started_at = job.started_at or now
        rows.append((job.status, job.started_at, now, job.pk))
        events.append(
            unsaved_event(
                job,
                "running",
                actor=actor,
                from_status=Status.QUEUED,
                to_status=job.status,
                message="The model is working on it.",
            )
        )
    if rows:
        _update_many(
            Job,
            "status = %s, started_at = %s, updated_at = %s WHERE id = %s",
            ["status", "started_at", "updated_at", "id"],
            rows,
        )
        record_events(events)
    return {job_id for *_, job_id in rows}


@transaction.atomic
def record_dispatches(accepted, *, next_poll_at=None, release=False):
    """The provider accepted these attempts: ``accepted`` holds ``(attempt, response_id,
    provider_status, request_id)``. Stores each response id, sets when to look at the job
    again and, with ``release``, drops the lease the job's dispatcher held (``attempt.job``'s
    ``lease_owner``; a lease another worker took since stays), in one statement per table.
    "started" is when the model got the work, even while the provider still queues it."""
    now = timezone.now()
    next_poll_at = next_poll_at or now
    _update_many(
        Attempt,
        "provider_response_id = %s, provider_status = %s, request_id = %s, "
        f"state = '{Attempt.State.IN_FLIGHT}' WHERE id = %s",
        ["provider_response_id", "provider_status", "request_id", "id"],
        [
            (response_id, provider_status, request_id, attempt.pk)
            for attempt, response_id, provider_status, request_id in accepted
        ],
    )
    _update_many(
        Job,
        "next_poll_at = %s, started_at = COALESCE(started_at, %s), "
        "lease_expires_at = CASE WHEN lease_owner = %s THEN NULL ELSE lease_expires_at END, "
        "lease_owner = CASE WHEN lease_owner = %s THEN '' ELSE lease_owner END WHERE id = %s",
        ["next_poll_at", "started_at", "lease_owner", "lease_owner", "id"],
        [
            (next_poll_at, now, owner, owner, attempt.job_id)
            for attempt, *_ in accepted
            for owner in [attempt.job.lease_owner if release else None]
        ],
    )
    jobs = Job.objects.only("id", "status").in_bulk([attempt.job_id for attempt, *_ in accepted])
    record_events(
        [
            unsaved_event(
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
        done = completion_for(job, now)
        if not can_proceed(getattr(job, done.transition)):
            raise ConcurrentUpdate(refusal(job, done.transition))
        getattr(job, done.transition)()
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
                outcome.provider_seconds,
                attempt.pk,
            )
        )
        job_rows.append(
            (
                job.status,
                *(done.changes.get(name) for name in COMPLETION_FIELDS),  # held: the end times NULL
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
            unsaved_event(
                job,
                done.kind,
                actor=actor,
                from_status=from_status,
                to_status=job.status,
                message=done.message,
            )
        )
    _update_many(
        Attempt,
        "input_tokens = %s, cached_tokens = %s, output_tokens = %s, reasoning_tokens = %s, "
        "cost = %s, price_version = %s, provider_status = %s, model = %s, service_tier = %s, "
        "output = %s, finished_at = %s, error_kind = %s, error_code = %s, error_message = %s, "
        "provider_seconds = %s, "
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
            "provider_seconds",
            "id",
        ],
        attempt_rows,
    )
    assigned = ["status", *COMPLETION_FIELDS, "updated_at"]
    changed = _update_many(
        Job,
        ", ".join(f"{name} = %s" for name in assigned)
        + ", input_tokens = input_tokens + %s, cached_tokens = cached_tokens + %s, "
        "output_tokens = output_tokens + %s, reasoning_tokens = reasoning_tokens + %s, "
        "cost = cost + %s WHERE id = %s AND status = %s",
        [
            *assigned,
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
