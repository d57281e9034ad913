"""The provider lanes: dispatch, the poller, streaming, the sync lane, cancel and expiry.

How due jobs get looked at within about a second, although django-q2 schedules are
minute-grained: a *pump* task (``run_pump``) loops inside one django-q2 worker for
``PUMP_RUN_SECONDS``. Each turn it claims a batch of due jobs (``next_poll_at <= now`` and no
live lease) with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, or an atomic lease update
inside SQLite's IMMEDIATE transaction elsewhere; dispatches the queued ones; retrieves the
in-flight ones concurrently (async SDK, one event loop per batch); applies the results through
the services; and writes each job's next poll time with backoff. When nothing is due it sleeps
a fraction of a second, so no worker ever sleeps on one job and one worker tracks thousands.
Halfway through, a pump enqueues its successor and keeps polling until the successor starts
and takes the slot over; a once-a-minute watchdog schedule restarts any pump slot whose
heartbeat went quiet (a SIGKILLed worker). Leases expire, so jobs claimed by a
killed worker become due again for another. ``PUMP_SLOTS`` sets how many pumps run at once
across all clusters. Webhooks only make a job due now; polling stays the safety net.
"""

import contextlib
import logging
import os
import random
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import circuit, provider, services
from .errors import JobError
from .job_types import get_job_type
from .models import (
    ACTIVE,
    LIVE_ATTEMPT_STATES,
    Attempt,
    DispatchPause,
    Job,
    PumpSlot,
    Status,
    WebhookReceipt,
)
from .provider import ProviderError, outcome_from_error
from .queue import enqueue

log = logging.getLogger(__name__)
STREAM_FLUSH_SECONDS = 0.3
STREAM_FLUSH_CHARS = 2000
# Opt-in instrumentation for benchmarks and chaos suites: a file that collects one line per
# retrieve (bench/p1_inflight.py reads slip from it; tests/chaos checks no job is polled twice
# at once).
POLL_LOG = os.environ.get("STEWARD_POLL_LOG", "")


def worker_name(prefix="w"):
    return f"{prefix}:{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


def _lease():
    return timedelta(seconds=settings.POLL_LEASE_SECONDS)


def poll_interval(age_seconds):
    """Seconds until the next look: short at first, about a tenth of the age later, capped.

    With webhooks on, a webhook makes the job due at once and polling is only the safety net
    for a lost delivery. It must still read the result inside the provider's retention (about
    ten minutes after the response ends), so a fixed ``WEBHOOK_SAFETY_POLL_SECONDS`` (default
    9 minutes) suffices: at most one extra retrieve for jobs under nine minutes, where the
    former 60-240 s backoff spent three to six (bench/RESULTS.md, P2)."""
    if settings.OPENAI_WEBHOOKS_ENABLED:
        base = settings.WEBHOOK_SAFETY_POLL_SECONDS
    else:
        base = min(max(settings.POLL_MIN_INTERVAL, age_seconds * 0.1), settings.POLL_MAX_INTERVAL)
    return base * random.uniform(0.9, 1.0)


# --- claiming ------------------------------------------------------------------------------


def _due(now):
    return Q(status__in=ACTIVE, next_poll_at__lte=now) & (
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )


def claim_due(owner, *, limit=None, now=None, job_ids=None):
    """Lease up to ``limit`` due jobs to ``owner``; return them. Safe across processes."""
    now = now or timezone.now()
    until = now + _lease()
    limit = limit or settings.POLL_BATCH
    with transaction.atomic():
        candidates = Job.objects.filter(_due(now))
        if job_ids is not None:
            candidates = candidates.filter(pk__in=job_ids)
        candidates = candidates.order_by("-priority", "next_poll_at")
        if connection.vendor == "postgresql":
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if ids:
            Job.objects.filter(pk__in=ids).update(lease_owner=owner, lease_expires_at=until)
    return list(Job.objects.filter(pk__in=ids, lease_owner=owner)) if ids else []


def _release(job, *, next_poll_at=None, wait_reason=None):
    changes = {"lease_owner": "", "lease_expires_at": None}
    if next_poll_at is not None:
        changes["next_poll_at"] = next_poll_at
    if wait_reason is not None:
        changes["wait_reason"] = wait_reason
    Job.objects.filter(pk=job.pk, lease_owner=job.lease_owner).update(**changes)


# --- dispatch ------------------------------------------------------------------------------


def dispatch_job(job_id, owner=None):
    """Start the next attempt of a queued job if it is due and nobody else holds it."""
    owner = owner or worker_name("dispatch")
    for job in claim_due(owner, limit=1, job_ids=[job_id]):
        process_claimed([job], owner)


def _dispatch_claimed(jobs):
    """Open attempts for claimed queued jobs and send their provider creates concurrently.

    Each job is checked on its own first (deadline, a paused workspace, the circuit breaker);
    the attempts of those that may start are opened together, their creates go out together
    and the accepted ones are recorded together, so a batch of new work costs the pump one
    round trip's wait and a few statements rather than a score of statements per job."""
    ready = _open_attempts(jobs)
    if not ready:
        return
    results = provider.create_many(
        [
            dict(
                job_id=job.pk,
                attempt_number=attempt.number,
                model=job.model,
                instructions=attempt.instructions,
            )
            for job, attempt in ready
        ]
    )
    accepted, failed, limited = [], 0, 0
    for (job, attempt), result in zip(ready, results, strict=True):
        if isinstance(result, ProviderError):
            failed += 1
            limited += result.status_code == 429
            services.finish_attempt(
                job=job,
                attempt=attempt,
                outcome=outcome_from_error(result),
                actor="system:dispatcher",
            )
            continue
        accepted.append((attempt, result.response_id, result.provider_status, result.request_id))
    if accepted:
        services.record_dispatches(
            accepted,
            next_poll_at=timezone.now() + timedelta(seconds=poll_interval(0)),
            release=True,
        )
    circuit.record(ok=len(accepted), failed=failed, rate_limited=limited)


def _open_attempts(jobs):
    """Begin the next attempt of each claimed queued job that may start now, all in one
    transaction; return the ``(job, attempt)`` pairs the provider should get. The others were
    expired, held back with a reason, refused, or handed to the stream lane's own task."""
    now = timezone.now()
    checks = dict(
        now=now,
        paused=set(
            DispatchPause.objects.filter(
                workspace_id__in={job.workspace_id for job in jobs}
            ).values_list("workspace_id", flat=True)
        ),
        closed=circuit.state(now) == "closed",
        notes=services.reviewer_notes_by_job(jobs),
    )
    starts = [(job, text) for job in jobs if (text := _try_instructions(job, **checks))]
    if not starts:
        return []
    started, refused = services.begin_attempts(starts=starts)
    for job, _reason in refused:
        _after_refusal(job)
    ready = []
    for job, attempt in started:
        if job.lane == "stream":
            enqueue("jobs.tasks.stream_job", str(job.pk), attempt.pk, job.lease_owner)
        else:
            ready.append((job, attempt))
    moved = [job.pk for job, _ in ready if job.lane == "sync"]
    if moved:  # sync jobs that reached a worker run in the background lane
        Job.objects.filter(pk__in=moved).update(lane="background")
    return ready


def _try_instructions(job, **checks):
    """``_instructions``, but one job that cannot start (say its job type was removed from the
    registry) must not stop the rest of the batch: it is logged and, its lease lapsing, tried
    again later."""
    try:
        return _instructions(job, **checks)
    except Exception:
        log.exception("job %s could not start; it is tried again after its lease", job.pk)
        return None


def _instructions(job, *, now, paused, closed, notes):
    """The instructions for the job's next attempt, or ``None`` if it must not start now (it
    was expired, or is held back with a reason)."""
    if job.expires_at <= now:
        services.expire_job(job=job)
        return None
    if job.lane != "sync" and job.workspace_id in paused:
        # an operator paused (or is draining) this workspace on the ops page
        _release(
            job,
            next_poll_at=now + timedelta(seconds=settings.DISPATCH_PAUSE_RECHECK_SECONDS),
            wait_reason=(
                "Waiting: an administrator paused new work in this workspace for a moment. "
                "It starts on its own when they resume; nothing is lost."
            ),
        )
        return None
    if job.lane != "sync" and not closed and not circuit.allows_dispatch(now):
        reopen = circuit.reopens_at() or now
        _release(
            job,
            next_poll_at=max(reopen, now + timedelta(seconds=2)),
            wait_reason=(
                "Waiting: the AI provider is having trouble, so Steward holds new work for a "
                "moment. It starts on its own; nothing is lost."
            ),
        )
        return None
    return get_job_type(job.job_type).render_instructions(job.input, notes.get(job.pk, []))


def _after_refusal(job):
    """``begin_attempts`` refused the job: it moved on, has an attempt under way (another pump
    claimed it after our lease ran out), or has no attempts left. The last without a live
    attempt means its last attempt was lost: the job fails."""
    fresh = Job.objects.get(pk=job.pk)
    live = fresh.attempts.filter(state__in=LIVE_ATTEMPT_STATES)
    if fresh.status in ACTIVE and fresh.attempt_count >= fresh.attempt_limit and not live.exists():
        services.fail_job(
            job=fresh,
            actor="system:dispatcher",
            kind="provider",
            retryable=False,
            reason="Steward lost track of its last attempt and none are left.",
        )
    _release(job)  # only if the lease is still ours: the live attempt's runner needs it


# --- polling -------------------------------------------------------------------------------


def process_claimed(jobs, owner):
    """Work a claimed batch: dispatch queued jobs, poll in-flight ones, recover lost attempts."""
    by_id = {job.pk: job for job in jobs}
    attempts = {
        a.job_id: a
        for a in Attempt.objects.filter(
            job_id__in=by_id, state__in=[Attempt.State.IN_FLIGHT, Attempt.State.DISPATCHING]
        ).order_by("number")
    }
    to_poll, to_start, stale_before = [], [], timezone.now() - _lease()
    for job in jobs:
        attempt = attempts.get(job.pk)
        if attempt is None:
            to_start.append(job)
        elif attempt.state == Attempt.State.DISPATCHING and attempt.started_at < stale_before:
            _recover_lost_attempt(job, attempt)
        elif attempt.state == Attempt.State.DISPATCHING:
            _release(job, next_poll_at=timezone.now() + timedelta(seconds=2))
        elif job.lane == "stream":
            enqueue("jobs.tasks.stream_job", str(job.pk), attempt.pk, owner)
        else:
            to_poll.append((job, attempt))
    _dispatch_claimed(to_start[: settings.PUMP_STARTS_PER_TURN])
    later = timezone.now() + timedelta(seconds=1)
    for job in to_start[settings.PUMP_STARTS_PER_TURN :]:
        # Due again in a second, behind every poll already due: a burst of new work cannot
        # crowd polls out of the batches. A dispatch task or a later turn starts it.
        _release(job, next_poll_at=later)
    if to_poll:
        held = _renew_leases([job for job, _ in to_poll], owner)
        to_poll = [(job, attempt) for job, attempt in to_poll if job.pk in held]
    if to_poll:
        _poll(to_poll)


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
        Job.objects.filter(pk__in=ids).update(lease_expires_at=now + _lease())
    return ids


def _recover_lost_attempt(job, attempt):
    """A worker died between opening an attempt and storing the provider's answer."""
    Attempt.objects.filter(pk=attempt.pk, state=Attempt.State.DISPATCHING).update(
        state=Attempt.State.ABANDONED,
        finished_at=timezone.now(),
        error_message="The worker stopped before the provider's answer was saved.",
    )
    services.record_event(
        job,
        "attempt_lost",
        actor="system:poller",
        from_status=job.status,
        to_status=job.status,
        message=f"Steward lost track of attempt {attempt.number}; it starts a new one.",
        data={"attempt": attempt.number},
    )
    _dispatch_claimed([Job.objects.get(pk=job.pk)])


def _poll(pairs):
    began = timezone.now()
    snapshots = provider.retrieve_many([a.provider_response_id for _, a in pairs])
    now = timezone.now()
    if POLL_LOG:
        _log_polls(pairs, began, now)
    Attempt.objects.filter(pk__in=[a.pk for _, a in pairs]).update(polls=F("polls") + 1)
    ok = failed = limited = 0
    waiting, completed = [], []
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
        if result.outcome is not None and result.outcome.status == "completed":
            completed.append((job, attempt, result.outcome))
            continue
        if result.outcome is not None:
            _apply_result(job, attempt, result.outcome)
            continue
        if result.is_working and job.status == Status.QUEUED:
            try:
                services.mark_running(job=job)
            except JobError:
                continue
        job.next_poll_at = now + timedelta(
            seconds=poll_interval((now - attempt.started_at).total_seconds())
        )
        waiting.append(job)
    _reschedule(waiting)
    # the plain completions of the batch in one go; the rest one at a time, with every check
    for job, attempt, outcome in services.finish_completed_batch(completed) if completed else []:
        _apply_result(job, attempt, outcome)
    circuit.record(ok=ok, failed=failed, rate_limited=limited, now=now)


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
    pipelined by psycopg and is cheap on SQLite too. Rows another worker leased meanwhile
    (after our lease expired) are left alone, as ``_release`` does."""
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
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Job._meta.db_table} SET next_poll_at = %s, lease_owner = '', "
            "lease_expires_at = NULL WHERE id = %s AND lease_owner = %s",
            rows,
        )


def _log_polls(pairs, began, now):
    """Append ``<answered epoch> <job id> <seconds late> <asked epoch> <lease owner> <pid>``
    per retrieve, in one write so lines from several processes never interleave. Off unless
    STEWARD_POLL_LOG names a file."""
    lines = "".join(
        f"{now.timestamp():.3f} {job.pk} {(now - job.next_poll_at).total_seconds():.3f} "
        f"{began.timestamp():.3f} {job.lease_owner} {os.getpid()}\n"
        for job, _ in pairs
        if job.next_poll_at
    )
    fd = os.open(POLL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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


# --- the pump ------------------------------------------------------------------------------


def run_pump(slot=0, seconds=None, owner=None, hand_over=None):
    """Poll and dispatch in a loop for about ``seconds``; return how many jobs were worked, or
    None if this pump never got the slot.

    Handing over without a gap: halfway through, the pump calls ``hand_over`` (the task layer
    enqueues a successor). The successor, finding the slot held, registers itself on the slot
    and waits; the running pump sees it at its next heartbeat, ends its turn and releases the
    slot, which the successor takes at once. If the task queue is slow to start the successor,
    the running pump keeps going past ``seconds`` (up to ``PUMP_MAX_SECONDS``) rather than
    leaving polling idle while its successor waits behind other tasks. Without ``hand_over``
    (tests, a one-off run) it stops after ``seconds`` and never waits for a slot."""
    owner = owner or worker_name(f"pump{slot}")
    seconds = settings.PUMP_RUN_SECONDS if seconds is None else seconds
    began = time.monotonic()
    if not _take_slot(slot, owner, wait=hand_over is not None):
        return None
    end = began + seconds
    last_end = began + max(seconds, settings.PUMP_MAX_SECONDS) if hand_over else end
    beat_every = min(5, settings.PUMP_STALE_SECONDS / 4)
    worked, last_beat, last_sweep, successor_called = 0, time.monotonic(), 0.0, False
    while True:
        tick = time.monotonic()
        if hand_over and not successor_called and tick >= began + seconds / 2:
            successor_called = True
            try:
                hand_over()
            except Exception:  # the watchdog restarts the slot once this pump has stopped
                log.exception("pump %s could not enqueue its successor", owner)
        if tick - last_beat >= beat_every:
            beat = _beat(slot, owner)
            if beat == "lost":  # went quiet too long and another pump took the slot
                return worked
            if beat == "successor waiting":
                break
            last_beat = tick
        if tick >= last_end or (tick >= end and not hand_over):
            break
        if tick - last_sweep >= 5:
            sweep_expired()
            last_sweep = tick
        try:
            jobs = claim_due(owner)
            if jobs:
                process_claimed(jobs, owner)
                worked += len(jobs)
                continue
        except Exception:
            # The pump outlives a failed turn (a dropped database connection, a bug one job
            # trips): the batch's leases lapse, so its jobs are claimed again later.
            log.exception("pump %s: a turn failed; its jobs are retried after their lease", owner)
            connection.close()  # reopened by the next query
            time.sleep(1)
            continue
        time.sleep(0.1)
    PumpSlot.objects.filter(slot=slot, owner=owner).update(owner="")
    return worked


def _take_slot(slot, owner, *, wait):
    """Make ``owner`` the slot's pump. A live pump holding it is waited for if ``wait``:
    ``owner`` registers as its successor (refreshing the registration while it waits) and
    the running pump releases the slot at its next heartbeat. False if a live pump holds the
    slot and ``wait`` is off, another successor already waits, or the wait runs out."""
    quiet = timedelta(seconds=settings.PUMP_STALE_SECONDS)
    give_up = time.monotonic() + settings.PUMP_MAX_SECONDS + settings.PUMP_STALE_SECONDS
    while time.monotonic() < give_up:
        now = timezone.now()
        with transaction.atomic():
            row, _ = PumpSlot.objects.select_for_update().get_or_create(slot=slot)
            live = row.owner and row.heartbeat_at and now - row.heartbeat_at < quiet
            if not live or row.owner == owner:
                PumpSlot.objects.filter(slot=slot).update(
                    owner=owner, heartbeat_at=now, successor="", successor_at=None
                )
                return True
            rival = row.successor not in ("", owner) and now - row.successor_at < quiet
            if not wait or rival:
                return False
            PumpSlot.objects.filter(slot=slot).update(successor=owner, successor_at=now)
        time.sleep(0.2)
    return False


def _beat(slot, owner):
    """Refresh ``owner``'s heartbeat: "lost" if another pump holds the slot now, "successor
    waiting" if one registered to take over, else "ok". One conditional update, so two pumps
    can never both believe they hold the slot."""
    now = timezone.now()
    quiet = timedelta(seconds=settings.PUMP_STALE_SECONDS)
    ours = (
        Q(owner=owner)
        | Q(owner="")
        | Q(heartbeat_at__isnull=True)
        | Q(heartbeat_at__lt=now - quiet)
    )
    if not PumpSlot.objects.filter(ours, slot=slot).update(owner=owner, heartbeat_at=now):
        return "lost"
    waiting = PumpSlot.objects.filter(slot=slot, successor_at__gte=now - quiet).exclude(
        successor__in=("", owner)
    )
    return "successor waiting" if waiting.exists() else "ok"


def stale_pump_slots(now=None):
    """Slots whose pump has gone quiet (or never ran): the watchdog restarts them."""
    now = now or timezone.now()
    quiet = timedelta(seconds=settings.PUMP_STALE_SECONDS)
    alive = set(
        PumpSlot.objects.filter(heartbeat_at__gte=now - quiet).values_list("slot", flat=True)
    )
    return [slot for slot in range(settings.PUMP_SLOTS) if slot not in alive]


def sweep_expired(limit=200):
    """Expire active jobs past their deadline (in-flight provider work is cancelled)."""
    expired = 0
    for job in Job.objects.filter(status__in=ACTIVE, expires_at__lt=timezone.now())[:limit]:
        try:
            services.expire_job(job=job)
            expired += 1
        except JobError:
            continue
    return expired


# --- streaming -----------------------------------------------------------------------------


def stream_job(job_id, attempt_id, handed_over_by=""):
    """Consume (or resume) a stream-lane attempt, saving text in batches with its cursor.

    The cursor is the sequence number of the last event whose text is saved, written in the
    same transaction as that text; a restarted worker resumes with ``starting_after=cursor``
    and so neither loses nor repeats text.
    """
    if not Attempt.objects.filter(
        pk=attempt_id, state__in=[Attempt.State.DISPATCHING, Attempt.State.IN_FLIGHT]
    ).exists():
        # The poller gave this attempt up (its task waited in the queue past the lease) or it
        # already finished. Running it anyway would create a second provider response, revive
        # the abandoned attempt and take the lease from the attempt that replaced it.
        return "superseded"
    owner = worker_name("stream")
    now = timezone.now()
    taken = (
        Job.objects.filter(pk=job_id, status__in=ACTIVE)
        .filter(Q(lease_owner=handed_over_by) | Q(lease_expires_at__lt=now) | Q(lease_owner=""))
        .update(lease_owner=owner, lease_expires_at=now + _lease())
    )
    if not taken:
        return "not-claimed"
    job = Job.objects.get(pk=job_id)
    attempt = Attempt.objects.get(pk=attempt_id)
    for _ in range(5):
        try:
            return _consume_stream(job, attempt, owner)
        except ProviderError as error:
            if not error.retryable:
                services.finish_attempt(
                    job=job,
                    attempt=attempt,
                    outcome=outcome_from_error(error),
                    actor="system:stream",
                )
                return "failed"
            attempt.refresh_from_db()
            if attempt.provider_response_id is None:
                services.finish_attempt(
                    job=job,
                    attempt=attempt,
                    outcome=outcome_from_error(error),
                    actor="system:stream",
                )
                return "create-failed"
            job.refresh_from_db()
            if job.status not in ACTIVE:
                return "stopped"
            time.sleep(0.5)
    _release(Job.objects.get(pk=job_id), next_poll_at=timezone.now() + timedelta(seconds=2))
    return "handed-back"


def _consume_stream(job, attempt, owner):
    attempt.refresh_from_db()
    if attempt.provider_response_id:
        job.refresh_from_db()
        chunks = provider.stream_response(
            response_id=attempt.provider_response_id, starting_after=job.stream_cursor
        )
    else:
        chunks = provider.stream_response(
            job_id=job.pk,
            attempt_number=attempt.number,
            model=job.model,
            instructions=attempt.instructions,
        )
    buffer, last_seq, last_flush = [], job.stream_cursor, time.monotonic()
    for chunk in chunks:
        if chunk.kind == "created" and not attempt.provider_response_id:
            attempt = services.record_dispatch(
                attempt=attempt,
                response_id=chunk.response_id,
                provider_status="queued",
                next_poll_at=timezone.now() + _lease(),
            )
            circuit.record(ok=1)
        elif (
            chunk.kind == "working" and Job.objects.filter(pk=job.pk, status=Status.QUEUED).exists()
        ):
            services.mark_running(job=job, actor="system:stream")
        elif chunk.kind == "text":
            buffer.append(chunk.text)
        last_seq = chunk.sequence
        if chunk.kind == "finished":
            services.save_stream_progress(
                job=job, text="".join(buffer), cursor=last_seq, owner=owner, lease=_lease()
            )
            services.finish_attempt(
                job=job, attempt=attempt, outcome=chunk.outcome, actor="system:stream"
            )
            return "finished"
        if (
            time.monotonic() - last_flush >= STREAM_FLUSH_SECONDS
            or sum(map(len, buffer)) >= STREAM_FLUSH_CHARS
        ):
            if not services.save_stream_progress(
                job=job, text="".join(buffer), cursor=last_seq, owner=owner, lease=_lease()
            ):
                return "stopped"  # canceled, expired or taken over meanwhile
            buffer, last_flush = [], time.monotonic()
    raise ProviderError(
        kind="provider",
        retryable=True,
        code="stream_ended",
        message="The stream ended before the answer was complete.",
    )


# --- sync lane, cancel, webhooks -----------------------------------------------------------


def start_job(job):
    """Called by the pages and the API right after ``submit_job``: a sync-lane job runs now,
    inside the request; every other lane was already handed to a worker on commit."""
    if job.lane == "sync" and job.status == Status.QUEUED and not getattr(job, "replayed", False):
        return run_sync(job)
    return job


def run_sync(job):
    """Run a sync-lane job inside the request. On timeout the job falls back to the
    background lane (a foreground request cannot be picked up again later)."""
    owner = worker_name("sync")
    claimed = claim_due(owner, limit=1, job_ids=[job.pk])
    if not claimed:
        return Job.objects.get(pk=job.pk)
    job = claimed[0]
    spec = get_job_type(job.job_type)
    instructions = spec.render_instructions(job.input, services.reviewer_notes_for(job))
    attempt = services.begin_attempt(job=job, instructions=instructions, actor="system:sync")
    try:
        snapshot = provider.run_foreground(
            job_id=job.pk,
            attempt_number=attempt.number,
            model=job.model,
            instructions=instructions,
            timeout=settings.SYNC_LANE_TIMEOUT,
        )
    except ProviderError as error:
        if error.kind == "timeout":
            services.move_to_background_lane(job=job, reason=error.message)
        services.finish_attempt(
            job=job, attempt=attempt, outcome=outcome_from_error(error), actor="system:sync"
        )
        _release(job)
        return Job.objects.get(pk=job.pk)
    services.record_dispatch(
        attempt=attempt, response_id=snapshot.response_id, provider_status=snapshot.provider_status
    )
    return services.finish_attempt(
        job=job, attempt=attempt, outcome=snapshot.outcome, actor="system:sync"
    )


def cancel_at_provider(job_id):
    """Propagate a cancel: cancel each in-flight response, then keep any result that had
    already arrived as a stale artifact (never released)."""
    job = Job.objects.get(pk=job_id)
    for attempt in job.attempts.filter(state=Attempt.State.IN_FLIGHT).exclude(
        provider_response_id=None
    ):
        try:
            provider.cancel_response(attempt.provider_response_id)
        except ProviderError as error:
            log.info("cancel of %s failed: %s", attempt.provider_response_id, error.message)
        result = provider.retrieve_many([attempt.provider_response_id])
        snapshot = result[attempt.provider_response_id]
        outcome = snapshot.outcome if not isinstance(snapshot, ProviderError) else None
        if outcome is not None:
            services.finish_attempt(
                job=job, attempt=attempt, outcome=outcome, actor="system:canceler"
            )


def receive_webhook(body, headers):
    """Verify and record a provider webhook, then make its job due now.

    Returns ``"duplicate"``, ``"due"`` or ``"unknown"``; raises ``provider.InvalidWebhook``.
    """
    event_id, event_type, response_id = provider.unwrap_webhook(body, headers)
    with transaction.atomic():
        _, created = WebhookReceipt.objects.get_or_create(
            event_id=event_id, defaults={"event_type": event_type, "response_id": response_id}
        )
        if not created:
            return "duplicate"
        attempt = Attempt.objects.filter(provider_response_id=response_id).first()
        if attempt is None:
            transaction.on_commit(lambda: enqueue("jobs.tasks.adopt_orphan", response_id))
            return "unknown"
        Job.objects.filter(pk=attempt.job_id, status__in=ACTIVE).update(next_poll_at=timezone.now())
    return "due"


def adopt_orphan(response_id):
    """A response nobody recorded (a worker died after create): find its attempt through the
    metadata, keep its result as stale, and cancel it if it is still running."""
    result = provider.retrieve_many([response_id])[response_id]
    if isinstance(result, ProviderError):
        return "gone"
    metadata = result.metadata
    attempt = Attempt.objects.filter(
        job_id=metadata.get("job_id"), number=metadata.get("attempt") or 0
    ).first()
    if attempt is None:
        return "no-match"
    if attempt.provider_response_id and attempt.provider_response_id != response_id:
        return "already-recorded"
    updated = Attempt.objects.filter(pk=attempt.pk, provider_response_id=None).update(
        provider_response_id=response_id
    )
    if not updated:
        return "already-recorded"
    attempt.refresh_from_db()
    job = attempt.job
    if attempt.state == Attempt.State.ABANDONED or job.status not in ACTIVE:
        Attempt.objects.filter(pk=attempt.pk).update(is_stale=True)
        if result.outcome is None:
            with contextlib.suppress(ProviderError):
                provider.cancel_response(response_id)
        else:
            services.finish_attempt(
                job=job, attempt=attempt, outcome=result.outcome, actor="system:orphans"
            )
        return "stale"
    return "matched"
