"""Hooks other apps register, so that ``jobs`` never imports them (dependencies point one way).

- ``review policy``: where the routing rule (``review_state_for``) reads a job type's sample
  rate and whether sensitive read-only input is reviewed. The default is the job type's
  declaration; ``review`` plugs in its admin-editable policies.
- ``after_event`` listeners: called after the transaction that wrote a job event commits
  (notifications, release steps). A listener's failure is logged, never raised into the caller.
- ``job_viewed`` listeners: called when a person opens a job's page (notifications marks the
  job's notices read).
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


class DeclaredPolicy:
    """A job type's review settings as its declaration states them (no admin override)."""

    review_sensitive_input = True

    def __init__(self, job_type):
        spec = get_job_type(job_type)
        self.sample_rate = spec.review_sample_rate
        self.approver_role = spec.approver_role


_policy_for = DeclaredPolicy
_listeners = []
_view_listeners = []


def set_review_policy_source(policy_for):
    """``policy_for(job_type)`` returns an object with ``sample_rate``,
    ``review_sensitive_input`` and ``approver_role``; ``review`` registers its admin-editable
    policies here."""
    global _policy_for
    _policy_for = policy_for


def review_policy(job_type):
    """The review policy in force for a job type (as ``set_review_policy_source`` says)."""
    return _policy_for(job_type)


def always_reviewed(authority_class):
    """Whether every job of this authority class waits for a reviewer, whatever its policy."""
    return authority_class in (AuthorityClass.DRAFT, AuthorityClass.EXTERNAL_EFFECT)


def review_state_for(job):
    """The review state a job gets when its model work is done (the one routing rule):

    - read_only: no review, unless its input is marked sensitive and the policy reviews that;
    - low_risk_write: a stable per-job coin flip at the policy's sample rate; the rest
      complete as not sampled;
    - draft and external_effect: always reviewed (an effect is then approved by a permitted
      role before its action runs).

    The policy is read only where it decides something: a pump finishing a batch of plain
    read-only jobs reads none."""
    if job.authority_class == AuthorityClass.READ_ONLY:
        if job.is_sensitive and _policy_for(job.job_type).review_sensitive_input:
            return ReviewState.PENDING
        return ReviewState.NOT_REQUIRED
    if job.authority_class == AuthorityClass.LOW_RISK_WRITE:
        sampled = is_sampled(job, _policy_for(job.job_type).sample_rate)
        return ReviewState.PENDING if sampled else ReviewState.NOT_SAMPLED
    return ReviewState.PENDING


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


def add_view_listener(listener):
    """Register ``listener(user, job)``: called when ``user`` opens ``job``'s page."""
    if listener not in _view_listeners:
        _view_listeners.append(listener)


def emit_job_viewed(user, job):
    for listener in list(_view_listeners):
        try:
            listener(user, job)
        except Exception:  # a notice left unread must never break the page
            log.exception("job view listener %r failed for job %s", listener, job.pk)
