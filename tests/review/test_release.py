"""The release step runs an approved external effect exactly once."""

from dataclasses import replace

import pytest

from demo.models import RefundLedgerEntry
from jobs.job_types import get_job_type, registry
from jobs.models import FailureKind, JobEvent, ReviewState, Status
from review import services, tasks
from review.models import ReleaseRecord
from tests.review.drafts import INPUTS, make_draft

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved_refund(workspace, submitter, admin):
    refund = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    services.claim_draft(job=refund, reviewer=admin)
    services.approve_draft(job=refund, reviewer=admin)
    return refund


def test_release_runs_the_refund_and_completes_the_job(approved_refund):
    assert tasks.run_release(str(approved_refund.pk)) == "succeeded"
    approved_refund.refresh_from_db()
    assert approved_refund.status == Status.COMPLETED
    assert approved_refund.review_state == ReviewState.APPROVED
    entry = RefundLedgerEntry.objects.get()
    assert (entry.job_id, str(entry.amount)) == (approved_refund.pk, "25.00")
    assert entry.idempotency_key == f"release:{approved_refund.pk}"
    event = JobEvent.objects.filter(job=approved_refund).last()
    assert (event.kind, event.actor_label) == ("released", "system:release")


def test_release_task_delivered_twice_runs_the_action_once(approved_refund):
    tasks.run_release(str(approved_refund.pk))
    tasks.run_release(str(approved_refund.pk))
    assert RefundLedgerEntry.objects.count() == 1
    record = ReleaseRecord.objects.get(job=approved_refund)
    assert (record.runs, record.deliveries) == (1, 2)
    assert JobEvent.objects.filter(job=approved_refund, kind="released").count() == 1


def _broken_refund(*, job, idempotency_key):
    """A payment gateway that writes half a refund and then drops the connection."""
    RefundLedgerEntry.objects.create(
        job=job,
        idempotency_key=idempotency_key,
        order_reference=job.input["order_reference"],
        customer_email=job.input["customer_email"],
        amount=job.input["amount"],
    )
    raise ConnectionError("payment gateway unreachable")


@pytest.fixture
def broken_refund_type(monkeypatch):
    spec = replace(get_job_type("issue_refund"), name="issue_refund_broken", action=_broken_refund)
    monkeypatch.setitem(registry._REGISTRY, spec.name, spec)
    return spec


def test_failing_action_fails_the_job_as_tool_and_keeps_the_draft(
    workspace, submitter, admin, broken_refund_type
):
    refund = make_draft(
        workspace=workspace,
        submitter=submitter,
        job_type=broken_refund_type.name,
        input=INPUTS["issue_refund"],
    )
    services.claim_draft(job=refund, reviewer=admin)
    services.approve_draft(job=refund, reviewer=admin)
    approved_refund = refund
    assert tasks.run_release(str(approved_refund.pk)) == "failed"
    approved_refund.refresh_from_db()
    assert approved_refund.status == Status.FAILED
    assert approved_refund.failure_kind == FailureKind.TOOL
    assert "payment gateway unreachable" in approved_refund.failure_reason
    assert approved_refund.artifacts.filter(kind="text").exists()
    assert RefundLedgerEntry.objects.count() == 0  # the action's partial write rolled back
    assert tasks.run_release(str(approved_refund.pk)) == "failed"  # and is not retried blindly


def test_release_of_a_job_canceled_after_approval_does_not_run(approved_refund, submitter):
    from jobs.services import cancel_job

    cancel_job(job=approved_refund, actor=submitter)
    assert tasks.run_release(str(approved_refund.pk)) == "abandoned"
    assert RefundLedgerEntry.objects.count() == 0


def test_release_of_a_job_never_approved_does_nothing(draft):
    assert tasks.run_release(str(draft.pk)) is None
