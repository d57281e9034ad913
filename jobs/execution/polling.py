"""Working a claimed batch: start the queued, retrieve the in-flight concurrently, apply results."""

import contextlib
import logging
import os
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .. import services
from ..errors import JobError, UnknownJobType
from ..job_types import get_job_type
from ..models import (
    Attempt,
    Job,
    Status,
)
from ..queue import enqueue
from . import circuit, provider
from .claims import lease_length, release_job, release_many
from .dispatch import dispatch_claimed
from .pacing import first_look, next_look, poll_interval
from .provider import ProviderError
from .tools import advance_run

log = logging.getLogger(__name__)


def process_claimed(jobs, owner):
    """Work a claimed batch: dispatch queued jobs, poll in-flight ones, recover lost attempts."""
    by_id = {job.pk: job for job in jobs}
    attempts = {
        a.job_id: a
        for a in Attempt.objects.filter(
            job_id__in=by_id, state__in=[Attempt.State.IN_FLIGHT, Attempt.State.DISPATCHING]
        )
        .defer("instructions", "output")  # the prompt and output are not needed to poll
        .order_by("number")
    }
    to_poll, to_start, stale_before = [], [], timezone.now() - lease_length()
    for job in jobs:
        attempt = attempts.get(job.pk)
        if attempt is None:
            to_start.append(job)
        elif attempt.state == Attempt.State.DISPATCHING and attempt.started_at < stale_before:
            _recover_lost_attempt(job, attempt)
        elif attempt.state == Attempt.State.DISPATCHING:
            release_job(job, next_poll_at=timezone.now() + timedelta(seconds=2))
        elif job.lane == "stream":
            enqueue("jobs.tasks.stream_job", str(job.pk), attempt.pk, owner)
        else:
            to_poll.append((job, attempt))
    # Polls first: a job already running is looked at when due, and the turn's new jobs start
    # right after, instead of every poll of the turn waiting for their creates.
    if to_poll and _claimed_a_while_ago([job for job, _ in to_poll]):
        held = _renew_leases([job for job, _ in to_poll], owner)
        to_poll = [(job, attempt) for job, attempt in to_poll if job.pk in held]
    if to_poll:
        poll(to_poll)
    dispatch_claimed(_with_input(to_start[: settings.PUMP_STARTS_PER_TURN]))
    # The rest are due again in a second, behind every poll already due: a burst of new work
    # cannot crowd polls out of the batches. A later turn (or a dispatch task) starts them.
    release_many(to_start[settings.PUMP_STARTS_PER_TURN :], owner, in_seconds=1)


def _with_input(jobs):
    """``jobs``, in their order, with the input a pump's claim left unread read in one go."""
    missing = [job.pk for job in jobs if "input" in job.get_deferred_fields()]
    whole = Job.objects.in_bulk(missing) if missing else {}
    return [whole.get(job.pk, job) for job in jobs]


def _claimed_a_while_ago(jobs, fresh_seconds=2):
    """True if some lease has run for more than ``fresh_seconds`` (a slow recovery of a lost
    attempt, a stalled database): renew before polling. A fresh claim goes straight on."""
    soonest = min(job.lease_expires_at for job in jobs)
    return soonest - timezone.now() < lease_length() - timedelta(seconds=fresh_seconds)


def _renew_leases(jobs, owner):
    """Extend ``owner``'s lease on those of ``jobs`` it still holds; return their ids.

    Dispatching the queued jobs of a large batch can take longer than the lease, and another
    pump may have claimed the rest meanwhile: polling them too would retrieve one job twice at
    once, so the retrieves go only to jobs whose lease is still ours, renewed for the call."""
    now = timezone.now()
    with transaction.atomic():
        held = Job.objects.filter(
            pk__in=[job.pk for job in jobs], lease_owner=owner, lease_expires_at__gt=now
        )
        if connection.vendor == "postgresql":
            held = held.select_for_update()
        ids = set(held.values_list("pk", flat=True))
        Job.objects.filter(pk__in=ids).update(lease_expires_at=now + lease_length())
    return ids


def _recover_lost_attempt(job, attempt):
    """A worker died between opening an attempt and storing the provider's answer."""
    Attempt.objects.filter(pk=attempt.pk, state=Attempt.State.DISPATCHING).update(
        state=Attempt.State.ABANDONED,
        finished_at=timezone.now(),
        error_message="The worker stopped before the provider's answer was saved.",
    )
    services.record_note(
        job,
        "attempt_lost",
        actor="system:poller",
        message=f"Steward lost track of attempt {attempt.number}; it starts a new one.",
        data={"attempt": attempt.number},
    )
    dispatch_claimed([Job.objects.get(pk=job.pk)])


def poll(pairs):
    began = timezone.now()
    snapshots = provider.retrieve_many([a.provider_response_id for _, a in pairs])
    now = timezone.now()
    if settings.STEWARD_POLL_LOG:
        _log_polls(pairs, began, now)
    Attempt.objects.filter(pk__in=[a.pk for _, a in pairs]).update(polls=F("polls") + 1)
    ok = failed = limited = 0
    waiting, completed, steps, starting = [], [], [], set()
    for job, attempt in pairs:
        result = snapshots[attempt.provider_response_id]
        if isinstance(result, ProviderError):
            failed += 1
            limited += result.status_code == 429
            if result.is_gone:
                _vanished(job, attempt, result)
            else:
                delay = max(
                    poll_interval((now - attempt.started_at).total_seconds()),
                    result.retry_after or 0,
                )
                job.next_poll_at = now + timedelta(seconds=delay)
                waiting.append(job)
            continue
        ok += 1
        if result.outcome is not None and result.outcome.is_step:
            steps.append((job, attempt, result.outcome))
            continue
        if result.outcome is not None and result.outcome.status == "completed":
            if _runs_tools(job):  # steps' usage to sum, evidence to keep: one job at a time
                _apply_result(job, attempt, result.outcome)
            else:
                completed.append((job, attempt, result.outcome))
            continue
        if result.outcome is not None:
            _apply_result(job, attempt, result.outcome)
            continue
        age = (now - attempt.started_at).total_seconds()
        if result.is_working and job.status == Status.QUEUED:
            starting.add(job.pk)
        job.next_poll_at = now + timedelta(seconds=next_look(age, first_look(job.job_type)))
        waiting.append(job)
    if starting:
        # a job that could not start (canceled meanwhile) keeps its lease until it lapses
        stuck = starting - services.mark_running_batch([j for j in waiting if j.pk in starting])
        waiting = [job for job in waiting if job.pk not in stuck]
    _reschedule(waiting)
    # the plain completions of the batch in one go; the rest one at a time, with every check
    for job, attempt, outcome in services.finish_completed_batch(completed) if completed else []:
        _apply_result(job, attempt, outcome)
    for job, attempt, outcome in steps:
        _advance(job, attempt, outcome)
    circuit.record(ok=ok, failed=failed, rate_limited=limited, now=now)


def _runs_tools(job):
    try:
        spec = get_job_type(job.job_type)
    except UnknownJobType:
        return False
    return bool(spec.tools or spec.hosted_tools)


def _advance(job, attempt, outcome):
    """A step of a tool run: one job's failure must not stop the rest of the batch."""
    try:
        advance_run(job, attempt, outcome)
    except JobError:
        log.info("job %s changed while its step was recorded", job.pk)
    except Exception:
        log.exception("job %s: its step could not be recorded; the next look tries again", job.pk)


def _apply_result(job, attempt, outcome):
    """Apply a finished response. If the job changed under us (a cancel committed between our
    read and our write, refusing the whole transaction), apply it once more on a fresh read:
    that keeps the result and its cost as stale on the canceled job, instead of leaving them to
    the cancel task's own retrieve, which a transient provider error would lose for good."""
    for _ in range(2):
        try:
            services.finish_attempt(job=job, attempt=attempt, outcome=outcome)
            return
        except JobError:
            log.info("job %s changed while its result was applied", job.pk)


def _reschedule(jobs):
    """Write each job's next poll time and drop its lease, in one round trip.

    ``bulk_update`` builds a ``CASE WHEN`` expression per row, which cost more CPU than the
    retrieves themselves at a few hundred jobs a batch; an ``executemany`` of a plain update is
    cheap on SQLite, and PostgreSQL gets one ``UPDATE … FROM unnest(…)``. Rows another worker
    leased meanwhile (after our lease expired) are left alone, as ``release_job`` does."""
    if not jobs:
        return
    pk, due = Job._meta.pk, Job._meta.get_field("next_poll_at")
    rows = [
        (
            due.get_db_prep_value(job.next_poll_at, connection),
            pk.get_db_prep_value(job.pk, connection),
            job.lease_owner,
        )
        for job in jobs
    ]
    table = Job._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # one statement whatever the batch: PostgreSQL ran the executemany's hundreds of
            # statements one by one, a ninth of the pump's time at 10,000 in flight
            due_at, ids, owners = (list(column) for column in zip(*rows, strict=True))
            cursor.execute(
                f"UPDATE {table} AS job SET next_poll_at = v.due, lease_owner = '', "
                "lease_expires_at = NULL FROM unnest(%s::timestamptz[], %s::uuid[], %s::text[]) "
                "AS v(due, id, owner) WHERE job.id = v.id AND job.lease_owner = v.owner",
                [due_at, ids, owners],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET next_poll_at = %s, lease_owner = '', "
                "lease_expires_at = NULL WHERE id = %s AND lease_owner = %s",
                rows,
            )


def _log_polls(pairs, began, now):
    """Append ``<answered epoch> <job id> <seconds late> <asked epoch> <lease owner> <pid>``
    per retrieve, in one write so lines from several processes never interleave. Off unless
    the STEWARD_POLL_LOG setting names a file: opt-in instrumentation for benchmarks and chaos
    suites (bench/p1_inflight.py reads slip from it; tests/chaos checks no job is polled twice at
    once)."""
    lines = "".join(
        f"{now.timestamp():.3f} {job.pk} {(now - job.next_poll_at).total_seconds():.3f} "
        f"{began.timestamp():.3f} {job.lease_owner} {os.getpid()}\n"
        for job, _ in pairs
        if job.next_poll_at
    )
    fd = os.open(settings.STEWARD_POLL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def _vanished(job, attempt, error):
    Attempt.objects.filter(pk=attempt.pk).update(
        state=Attempt.State.FAILED,
        error_kind="provider",
        error_code="not_found",
        error_message=error.message,
        finished_at=timezone.now(),
    )
    with contextlib.suppress(JobError):
        services.fail_job(
            job=job, actor="system:poller", kind="provider", retryable=True, reason=error.message
        )
