"""The status machine, table-driven: each transition from each status is allowed or refused."""

import pytest
from django_fsm import TransitionNotAllowed as FSMRefused
from django_fsm import can_proceed

from jobs.models import Status
from tests.factories import JobFactory

S = Status
ALLOWED = {
    "start": {S.QUEUED},
    "requeue": {S.RUNNING},
    "hold_for_review": {S.RUNNING},
    "complete": {S.RUNNING, S.NEEDS_REVIEW},
    "fail": {S.QUEUED, S.RUNNING, S.NEEDS_REVIEW},
    "cancel": {S.QUEUED, S.RUNNING, S.NEEDS_REVIEW},
    "expire": {S.QUEUED, S.RUNNING},
    "retry": {S.FAILED, S.CANCELED, S.EXPIRED},
    "send_back": {S.NEEDS_REVIEW},
}
TARGET = {
    "start": S.RUNNING,
    "requeue": S.QUEUED,
    "hold_for_review": S.NEEDS_REVIEW,
    "complete": S.COMPLETED,
    "fail": S.FAILED,
    "cancel": S.CANCELED,
    "expire": S.EXPIRED,
    "retry": S.QUEUED,
    "send_back": S.QUEUED,
}
CASES = [(name, status) for name in ALLOWED for status in Status]


@pytest.mark.django_db
@pytest.mark.parametrize(("transition", "status"), CASES)
def test_transition_table(transition, status):
    job = JobFactory(status=status, attempt_count=1, attempt_limit=3, failure_retryable=True)
    method = getattr(job, transition)
    if status in ALLOWED[transition]:
        assert can_proceed(method)
        method()
        job.save()
        job.refresh_from_db()
        assert job.status == TARGET[transition]
    else:
        assert not can_proceed(method)
        with pytest.raises(FSMRefused):
            method()
        job.refresh_from_db()
        assert job.status == status


@pytest.mark.django_db
@pytest.mark.parametrize("transition", ["retry", "requeue", "send_back"])
def test_new_attempts_need_budget_left(transition):
    source = next(iter(ALLOWED[transition]))
    job = JobFactory(status=source, attempt_count=3, attempt_limit=3)
    assert not can_proceed(getattr(job, transition))


@pytest.mark.django_db
def test_a_failure_retrying_cannot_fix_does_not_retry():
    job = JobFactory(status=Status.FAILED, attempt_count=1, failure_retryable=False)
    assert not can_proceed(job.retry)
    assert can_proceed(job.retry, check_conditions=False)  # refused by the condition only


@pytest.mark.django_db
def test_status_cannot_be_assigned_directly():
    job = JobFactory()
    with pytest.raises(AttributeError):
        job.status = Status.COMPLETED
