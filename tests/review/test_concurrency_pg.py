"""Races on PostgreSQL: two reviewers claiming one draft, two deliveries of one release task."""

import threading

import pytest
from django.db import connection

from demo.models import RefundLedgerEntry
from jobs.models import Status
from review import services, tasks
from review.errors import ClaimHeld
from review.models import ReleaseRecord, ReviewClaim
from tests.review.drafts import make_draft

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]


def _race(calls):
    """Run ``calls`` at the same moment in threads; return each one's result or exception."""
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as error:  # the race's loser is the point of the test
            results[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.parametrize("round_", range(5))
def test_two_reviewers_claiming_at_once_get_one_claim(
    workspace, submitter, reviewer, other_reviewer, round_
):
    draft = make_draft(workspace=workspace, submitter=submitter)
    results = _race(
        [
            lambda: services.claim_draft(job=draft, reviewer=reviewer),
            lambda: services.claim_draft(job=draft, reviewer=other_reviewer),
        ]
    )
    claims = [r for r in results if isinstance(r, ReviewClaim)]
    refusals = [r for r in results if isinstance(r, ClaimHeld)]
    assert (len(claims), len(refusals)) == (1, 1), results
    assert "is working on this draft" in refusals[0].message
    assert ReviewClaim.objects.filter(job=draft, released_at__isnull=True).count() == 1


@pytest.mark.parametrize("round_", range(5))
def test_two_reviewers_approving_at_once_decide_once(
    workspace, submitter, reviewer, other_reviewer, round_
):
    draft = make_draft(workspace=workspace, submitter=submitter)
    services.claim_draft(job=draft, reviewer=reviewer)
    results = _race(
        [
            lambda: services.approve_draft(job=draft, reviewer=reviewer),
            lambda: services.reject_draft(job=draft, reviewer=other_reviewer, reason="No."),
        ]
    )
    draft.refresh_from_db()
    assert draft.status == Status.COMPLETED, results
    assert draft.decisions.count() == 1


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_release_tasks_run_the_refund_once(workspace, submitter, admin, round_):
    refund = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    services.claim_draft(job=refund, reviewer=admin)
    services.approve_draft(job=refund, reviewer=admin)
    results = _race([lambda: tasks.run_release(str(refund.pk)) for _ in range(3)])
    assert results == ["succeeded"] * 3
    assert RefundLedgerEntry.objects.filter(job=refund).count() == 1
    refund.refresh_from_db()
    assert refund.status == Status.COMPLETED
    record = ReleaseRecord.objects.get(job=refund)
    assert (record.runs, record.deliveries) == (1, 3)
