"""The pump's writes for a batch of attempts, in a few statements whatever its size."""

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from ..models import (
    LIVE_ATTEMPT_STATES,
    Attempt,
    Job,
    Status,
)
from .base import record_events, refusal, unsaved_event


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
        update_many(
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
    update_many(
        Attempt,
        "provider_response_id = %s, provider_status = %s, request_id = %s, "
        f"state = '{Attempt.State.IN_FLIGHT}' WHERE id = %s",
        ["provider_response_id", "provider_status", "request_id", "id"],
        [
            (response_id, provider_status, request_id, attempt.pk)
            for attempt, response_id, provider_status, request_id in accepted
        ],
    )
    update_many(
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


def update_many(model, assignments, fields, rows):
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
