"""Starting attempts for a claimed batch of queued jobs: checks, one transaction, creates."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .. import services
from ..job_types import get_job_type
from ..models import (
    ACTIVE,
    LIVE_ATTEMPT_STATES,
    DispatchPause,
    Job,
)
from ..queue import enqueue
from . import circuit, provider, tools
from .claims import release_job
from .pacing import first_look, next_look
from .provider import ProviderError, outcome_from_error

log = logging.getLogger(__name__)


def dispatch_claimed(jobs):
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
                tools=_provider_tools(job),
                history=_finished_steps(job, attempt),
            )
            for job, attempt in ready
        ]
    )
    accepted, failed, limited = {}, 0, 0  # job type -> the provider's accepted answers
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
        accepted.setdefault(job.job_type, []).append(
            (attempt, result.response_id, result.provider_status, result.request_id)
        )
    working = []
    for job_type, rows in accepted.items():  # each job type has its own first look
        first = next_look(0, first_look(job_type))
        services.record_dispatches(
            rows, next_poll_at=timezone.now() + timedelta(seconds=first), release=True
        )
        working += [attempt.job for attempt, _, status, _ in rows if status == "in_progress"]
    if working:  # the model took the work on at once: the job is running from now
        services.mark_running_batch(working, actor="system:dispatcher")
    circuit.record(ok=sum(map(len, accepted.values())), failed=failed, rate_limited=limited)


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


def _provider_tools(job):
    return get_job_type(job.job_type).provider_tools() or None


def _finished_steps(job, attempt):
    """For a retried tool run, the steps earlier attempts finished: every call of the step has
    its output. The new attempt starts after them, so no call that ran is run again."""
    if attempt.number == 1 or not get_job_type(job.job_type).tools:
        return None
    return tools.finished_conversation(job, before=attempt) or None


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
        release_job(
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
        release_job(
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
    release_job(job)  # only if the lease is still ours: the live attempt's runner needs it
