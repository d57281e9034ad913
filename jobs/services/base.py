"""Plumbing every job write shares: events, refusals, FSM moves, completions, fresh reads."""

import random
import time
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django_fsm import ConcurrentTransition, can_proceed

from .. import hooks
from ..errors import (
    ConcurrentUpdate,
    TransitionNotAllowed,
)
from ..job_types import AuthorityClass
from ..models import (
    TERMINAL,
    Job,
    JobEvent,
    PumpSlot,
    ReviewState,
    attempts_remain,
)
from ..queue import enqueue

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


# --- plumbing ------------------------------------------------------------------------------


def actor_fields(actor):
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    return actor, actor.get_username()


def unsaved_event(job, kind, *, actor, from_status="", to_status="", message="", data=None):
    user, label = actor_fields(actor)
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
    return record_events([unsaved_event(job, kind, **fields)])[0]


def record_note(job, kind, *, actor, message="", data=None):
    """Append an event that leaves the job's status as it is (a claim, an edit, a retry
    scheduled while queued)."""
    return record_event(
        job,
        kind,
        actor=actor,
        from_status=job.status,
        to_status=job.status,
        message=message,
        data=data,
    )


def record_events(events):
    """Append unsaved ``JobEvent`` rows in one insert (a pump starts dozens of attempts a
    turn); listeners hear about each once the transaction commits."""
    JobEvent.objects.bulk_create(events)
    transaction.on_commit(lambda: hooks.emit_after_commit(events))
    return events


def refusal(job, transition_name):
    """Why ``transition_name`` is not allowed now, in words for the person who asked."""
    verb = VERBS.get(transition_name, transition_name)
    if not can_proceed(getattr(job, transition_name), check_conditions=False):
        return f"This job is {job.get_status_display().lower()}, so it can't be {verb}."
    if not attempts_remain(job):
        return (
            f"This job has used all {job.attempt_limit} of its attempts, so it can't be {verb}. "
            "Submit it again as a new job."
        )
    return (
        "Running the same input again would fail the same way, so this job can't be "
        f"{verb}. Submit it again with what needs to change."
    )


def allowed_controls(job):
    """The controls a person may use on ``job`` now, asked of the state machine: ``cancel``
    and ``retry`` when their transition may proceed (source status and conditions), and
    ``archive`` for a finished job not yet archived. The job page and the API show these."""
    controls = [name for name in ("cancel", "retry") if can_proceed(getattr(job, name))]
    if job.status in TERMINAL and not job.is_archived:
        controls.append("archive")
    return controls


def move_job(
    job, transition_name, *, actor, kind, message="", data=None, from_status=None, **changes
):
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


class Completion(NamedTuple):
    """How a job whose model completed finishes: its transition, the event's kind and message,
    and the field changes that go with them."""

    transition: str
    kind: str
    message: str
    changes: dict


# Every field ``completion_for`` may change, for the batch path's one UPDATE for all its jobs
# (a held job's changes leave out completed_at and finished_at, which stay NULL).
COMPLETION_FIELDS = [
    "provider_finished_at",
    "review_state",
    "next_poll_at",
    "lease_owner",
    "lease_expires_at",
    "started_at",
    "completed_at",
    "finished_at",
]


def waiting_for_review_sentence(job):
    """What a draft waits for, naming who must act: an external effect waits for its approver,
    any other draft for a reviewer."""
    if job.authority_class == AuthorityClass.EXTERNAL_EFFECT:
        approver = APPROVERS.get(hooks.review_policy(job.job_type).approver_role, "an approver")
        return f"The draft is ready; nothing is done until {approver} approves it."
    return "The draft is ready and waits for a reviewer."


# Who may approve an external effect, by the approver role its job type names.
APPROVERS = {"admin": "a workspace admin", "reviewer": "a reviewer or a workspace admin"}


def completion_for(job, now):
    """Hold for review or complete, as the review router decides for ``job`` (running, its
    attempt's output in hand); ``now`` is when the provider finished. The one-job and the batch
    path both finish a completed attempt with this, so they cannot disagree."""
    review_state = hooks.review_state_for(job)
    changes = {
        "provider_finished_at": now,
        "review_state": review_state,
        "next_poll_at": None,
        "lease_owner": "",
        "lease_expires_at": None,
        "started_at": job.started_at,
    }
    if review_state in (ReviewState.PENDING, ReviewState.ESCALATED):
        message = waiting_for_review_sentence(job)
        return Completion("hold_for_review", "needs_review", message, changes)
    changes |= {"completed_at": now, "finished_at": now}
    return Completion("complete", "completed", "Finished.", changes)


def fresh_copy(job):
    """A fresh copy of the job, read inside the caller's transaction."""
    return Job.objects.get(pk=job.pk)


def enqueue_on_commit(func_path, *args):
    transaction.on_commit(lambda: enqueue(func_path, *args))


def dispatch_on_commit(job):
    """Once committed, make sure something starts ``job``. Every live pump claims due queued
    jobs each turn and starts them in batches, so a dispatch task (which also wakes quiet
    pumps) is enqueued only while a pump slot has not beaten lately: at thousands of jobs a
    minute, one task per job cost the workers more than the starts themselves (bench/P1)."""

    def hand_over():
        if not _pumps_beating():
            enqueue("jobs.tasks.dispatch_job", str(job.pk))

    transaction.on_commit(hand_over)


_pumps_seen = {"at": float("-inf"), "beating": False}


def _pumps_beating():
    """True if every pump slot beat in the last 10 s; asked of the database at most every 2 s
    per process (a pump beats every 5 s)."""
    now = time.monotonic()
    if now - _pumps_seen["at"] >= 2:
        fresh = timedelta(seconds=min(10, settings.PUMP_STALE_SECONDS))
        beating = PumpSlot.objects.beating(within=fresh).count()
        _pumps_seen.update(at=now, beating=beating >= settings.PUMP_SLOTS)
    return _pumps_seen["beating"]


def forget_pumps_seen():
    _pumps_seen.update(at=float("-inf"), beating=False)


def retry_delay(attempt_number, retry_after=None):
    """Exponential backoff with ±20 % jitter, capped at a minute, never shorter than Retry-After."""
    base = min(2.0 * 2 ** max(attempt_number - 1, 0), 60.0) * random.uniform(0.8, 1.2)
    return max(base, float(retry_after or 0))


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
