"""The plain-language mapping: every failure reads as words a submitter understands."""

import pytest

from jobs.explain import explain, progress_markers
from jobs.models import FailureKind, Status
from jobs.selectors import timeline_events
from review import services as review
from review.release import release_approved
from tests.factories import JobFactory
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db

PROVIDER_WORDS = ("response", "in_progress", "resp_", "incomplete", "background")


@pytest.mark.parametrize("kind", FailureKind.values)
def test_every_failure_kind_is_explained_without_provider_words(kind):
    job = JobFactory(status=Status.FAILED, failure_kind=kind)
    text = " ".join(vars(explain(job)).values()).lower()
    assert all(word not in text for word in PROVIDER_WORDS)
    assert explain(job).headline


def test_retryable_failure_with_attempts_left_suggests_retry():
    job = JobFactory(status=Status.FAILED, failure_kind="provider", failure_retryable=True)
    explanation = explain(job)
    assert explanation.next_action == "retry"
    assert "likely to help" in explanation.retry_helps
    assert "Nobody needs to step in" in explanation.person


def test_input_failure_suggests_correcting_the_input():
    job = JobFactory(status=Status.FAILED, failure_kind="input", needs_human=True)
    explanation = explain(job)
    assert explanation.next_action == "resubmit"
    assert "Correct the input" in explanation.retry_helps
    assert "A person needs to look at this" in explanation.person


def test_used_up_attempts_suggest_a_new_job():
    job = JobFactory(status=Status.FAILED, failure_retryable=True, attempt_count=3, attempt_limit=3)
    assert explain(job).next_action == "resubmit"
    assert "used all 3" in explain(job).retry_helps


def test_partial_output_is_mentioned():
    job = JobFactory(status=Status.FAILED, failure_kind="provider", has_partial_output=True)
    assert "Part of the answer was produced" in explain(job).partial


def test_running_jobs_need_no_explanation():
    assert explain(JobFactory(status=Status.RUNNING)) is None


def test_queued_marker_is_reached_at_creation_even_without_events():
    job = JobFactory()
    markers = {m.key: m for m in progress_markers(job, [])}
    assert markers["queued"].at == job.created_at
    assert not markers["started"].reached


# --- every marker that happened shows its time ------------------------------------------------


def _markers(job):
    job.refresh_from_db()
    return {m.key: m.at for m in progress_markers(job, list(timeline_events(job)))}


def _event_time(job, kind):
    return job.events.filter(kind=kind).earliest("id").created_at


def test_a_job_finished_before_any_look_saw_it_running_shows_the_model_worked(workspace, submitter):
    job = make_draft(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input={"title": "Plain", "document": "Nothing secret."},
    )
    assert not job.events.filter(kind="running").exists()
    markers = _markers(job)
    assert markers["working"] == markers["released"] == _event_time(job, "completed")


def test_an_approved_draft_is_released_when_it_is_approved(workspace, submitter, reviewer):
    job = make_draft(workspace=workspace, submitter=submitter)
    assert _markers(job)["released"] is None
    review.claim_draft(job=job, reviewer=reviewer)
    review.approve_draft(job=job, reviewer=reviewer)
    markers = _markers(job)
    assert markers["working"] == markers["review"] == _event_time(job, "needs_review")
    assert markers["released"] == _event_time(job, "approved")


def test_an_approved_refund_is_released_only_when_its_action_ran(workspace, submitter, admin):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    review.claim_draft(job=job, reviewer=admin)
    review.approve_draft(job=job, reviewer=admin)
    assert _markers(job)["released"] is None  # approved, the refund not yet made
    release_approved(job_id=job.pk)
    assert _markers(job)["released"] == _event_time(job, "released")
