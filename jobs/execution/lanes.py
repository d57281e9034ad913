"""The stream lane, the sync lane, cancel at the provider, provider webhooks and orphans."""

import contextlib
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .. import services
from ..job_types import get_job_type
from ..models import (
    ACTIVE,
    Attempt,
    Job,
    Status,
    WebhookReceipt,
)
from ..queue import enqueue
from . import circuit, provider
from .claims import claim_due, lease_length, release_job, worker_name
from .provider import ProviderError, outcome_from_error

log = logging.getLogger(__name__)
# How far back an unrecorded create may still be answered by a webhook (background responses
# outlive their jobs' deadlines at the provider only by minutes; a day is generous).
ORPHAN_WINDOW = timedelta(days=1)
STREAM_FLUSH_SECONDS = 0.3
STREAM_FLUSH_CHARS = 2000


def stream_job(job_id, attempt_id, handed_over_by="", stop=None):
    """Consume (or resume) a stream-lane attempt, saving text in batches with its cursor.

    The cursor is the sequence number of the last event whose text is saved, written in the
    same transaction as that text; a restarted worker resumes with ``starting_after=cursor``
    and so neither loses nor repeats text. ``stop``, if given, is asked after every event:
    true (the worker's cluster is shutting down) saves what arrived, releases the job and
    returns, and the next worker resumes from the cursor.
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
        .update(lease_owner=owner, lease_expires_at=now + lease_length())
    )
    if not taken:
        return "not-claimed"
    job = Job.objects.get(pk=job_id)
    attempt = Attempt.objects.get(pk=attempt_id)
    for _ in range(5):
        try:
            return _consume_stream(job, attempt, owner, stop)
        except ProviderError as error:
            last_error = error
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
    log.warning(
        "the stream of job %s (response %s) failed 5 times, the last with %s: %s",
        job_id,
        attempt.provider_response_id,
        last_error.code,
        last_error.message,
    )
    if _finish_from_retrieve(job, attempt):
        return "finished-from-retrieve"
    release_job(Job.objects.get(pk=job_id), next_poll_at=timezone.now() + timedelta(seconds=2))
    return "handed-back"


def _finish_from_retrieve(job, attempt):
    """A stream that keeps failing may belong to a response that has ended in a way its
    stream cannot tell (cancelled elsewhere, say: its events stop without a terminal one).
    Read the response whole, and if it has ended (or is gone), finish the attempt with it,
    rather than hand the job back to a stream that will fail the same way. True if finished."""
    response_id = attempt.provider_response_id
    result = provider.retrieve_many([response_id])[response_id]
    if isinstance(result, ProviderError):
        if result.retryable:
            return False
        outcome = outcome_from_error(result)
    elif result.outcome is None:
        return False
    else:
        outcome = result.outcome
    services.finish_attempt(job=job, attempt=attempt, outcome=outcome, actor="system:stream")
    return True


def _consume_stream(job, attempt, owner, stop=None):
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
                next_poll_at=timezone.now() + lease_length(),
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
                job=job, text="".join(buffer), cursor=last_seq, owner=owner, lease=lease_length()
            )
            services.finish_attempt(
                job=job, attempt=attempt, outcome=chunk.outcome, actor="system:stream"
            )
            return "finished"
        stopping = stop is not None and stop()
        if (
            stopping
            or time.monotonic() - last_flush >= STREAM_FLUSH_SECONDS
            or sum(map(len, buffer)) >= STREAM_FLUSH_CHARS
        ):
            if not services.save_stream_progress(
                job=job, text="".join(buffer), cursor=last_seq, owner=owner, lease=lease_length()
            ):
                return "stopped"  # canceled, expired or taken over meanwhile
            buffer, last_flush = [], time.monotonic()
        if stopping:  # the job's lease is still ``owner``'s: the save above checked it
            release_job(job, next_poll_at=timezone.now())
            return "handed-back"
    raise ProviderError(
        kind="provider",
        retryable=True,
        code="stream_ended",
        message="The stream ended before the answer was complete.",
    )


def submit_and_start(**submission):
    """How the web form and the API submit: record the job (``services.submit_job``, whose
    keyword arguments these are), then start it. A sync-lane job runs now, inside the request;
    every other lane was already handed to a worker when the submission committed. Returns the
    job as it stands, with ``replayed`` as ``submit_job`` set it. A sync-lane job is written
    already held for this request, so a worker's pump cannot start it first."""
    owner = worker_name("sync")
    job = services.submit_job(**submission, run_by=owner)
    if job.lane == "sync" and job.status == Status.QUEUED and not job.replayed:
        job = run_sync(job, owner=owner)
        job.replayed = False
    return job


def run_sync(job, owner=None):
    """Run a sync-lane job inside the request. On timeout the job falls back to the
    background lane (a foreground request cannot be picked up again later). A job that
    ``owner`` already holds (``submit_job(run_by=owner)``) is run as it is; any other is
    claimed first, and left alone if a worker holds it."""
    if owner is None or job.lease_owner != owner:
        owner = worker_name("sync")
        claimed = claim_due(owner, limit=1, job_ids=[job.pk])
        if not claimed:
            return Job.objects.get(pk=job.pk)
        job = claimed[0]
    spec = get_job_type(job.job_type)
    instructions = spec.render_instructions(job.input, services.reviewer_notes_for(job))
    attempt = services.begin_attempt(job=job, instructions=instructions, actor="system:sync")
    # The provider may take SYNC_LANE_TIMEOUT: hand the request's database connection back to
    # the web process's pool meanwhile, so a slow provider cannot empty it for other requests.
    if not connection.in_atomic_block:
        close_old_connections()
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
        release_job(job)
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

    Returns ``"due"``, ``"duplicate"``, ``"adopting"`` (a response whose create was never
    recorded: a worker died after it) or ``"ignored"``: an event not about a response, or about
    a response no attempt of Steward's made or may have made (another service's, in a shared
    OpenAI project). An ignored event is acknowledged (a 4xx would only make the provider
    deliver it again for days) and costs at most two indexed reads: nothing is stored and no
    task is queued. Raises ``provider.InvalidWebhook`` for a delivery that does not verify or
    is malformed.
    """
    event_id, event_type, response_id = provider.unwrap_webhook(body, headers)
    if not response_id:
        return "ignored"
    with transaction.atomic():
        attempt = Attempt.objects.filter(provider_response_id=response_id).first()
        if attempt is None and not _has_unrecorded_creates():
            return "ignored"
        _, created = WebhookReceipt.objects.get_or_create(
            event_id=event_id, defaults={"event_type": event_type, "response_id": response_id}
        )
        if not created:
            return "duplicate"
        if attempt is None:
            transaction.on_commit(lambda: enqueue("jobs.tasks.adopt_orphan", response_id))
            return "adopting"
        Job.objects.filter(pk=attempt.job_id, status__in=ACTIVE).update(next_poll_at=timezone.now())
    return "due"


def _has_unrecorded_creates():
    """Whether some recent attempt's create may have reached the provider unrecorded (a worker
    died after it, or its answer is still being saved)."""
    return Attempt.objects.filter(
        provider_response_id__isnull=True,
        state__in=[Attempt.State.DISPATCHING, Attempt.State.ABANDONED],
        started_at__gte=timezone.now() - ORPHAN_WINDOW,
    ).exists()


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
