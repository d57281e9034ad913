"""The provider lane's writes for one attempt before its result: begin, dispatch, running,
artifacts, stream progress and the sync lane's hand-over (``finishing`` applies the result)."""

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from ..errors import (
    ConcurrentUpdate,
    TransitionNotAllowed,
)
from ..models import (
    ACTIVE,
    Artifact,
    Attempt,
    Job,
    Status,
)
from .base import actor_fields, fresh_copy, move_job, record_note
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


def look_soon(job_id):
    """Someone is watching a job (its page or its event stream is open) whose attempt the
    provider accepted but Steward has not seen start: make it due now, so the pump's next
    turn looks and the page says ``running`` once the model works. The provider sends no
    webhook when a model starts, so a job nobody watches waits for its usual pacing instead:
    looks for the start cost retrieves only while a person is there to see it (bench P2).
    Moves no status and records no event. Returns whether the job was made due."""
    now = timezone.now()
    return bool(
        Job.objects.filter(
            pk=job_id,
            status=Status.QUEUED,
            next_poll_at__gt=now,
            attempts__state=Attempt.State.IN_FLIGHT,
        ).update(next_poll_at=now)
    )


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
