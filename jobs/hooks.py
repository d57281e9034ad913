"""Hooks other apps register, so that ``jobs`` never imports them (dependencies point one way).

- ``review_router``: decides, when the model has finished, whether a job waits for review.
  The default applies the job type's declared policy; ``review`` replaces it with its
  admin-editable policies.
- ``after_event`` listeners: called after the transaction that wrote a job event commits
  (notifications, release steps). A listener's failure is logged, never raised into the caller.
"""

import hashlib
import logging

from .job_types import AuthorityClass, get_job_type
from .models import ReviewState

log = logging.getLogger(__name__)


def is_sampled(job, rate):
    """A stable coin flip per job: the same job always gets the same answer."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"review-sample:{job.id}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < rate


def default_review_router(job):
    """The review state a job gets when its model work is done."""
    job_type = get_job_type(job.job_type)
    if job.authority_class == AuthorityClass.READ_ONLY:
        return ReviewState.PENDING if job.is_sensitive else ReviewState.NOT_REQUIRED
    if job.authority_class == AuthorityClass.LOW_RISK_WRITE:
        if is_sampled(job, job_type.review_sample_rate):
            return ReviewState.PENDING
        return ReviewState.NOT_SAMPLED
    return ReviewState.PENDING


_review_router = default_review_router
_listeners = []


def set_review_router(router):
    global _review_router
    _review_router = router


def review_state_for(job):
    return _review_router(job)


def add_event_listener(listener):
    """Register ``listener(events)``: called with the events each transaction wrote, once it
    has committed (a batch from a pump turn, one event from most actions)."""
    if listener not in _listeners:
        _listeners.append(listener)


def emit_after_commit(events):
    for listener in list(_listeners):
        try:
            listener(events)
        except Exception:  # a notification must never undo or break a state change
            log.exception(
                "job event listener %r failed for events %s", listener, [e.pk for e in events]
            )
