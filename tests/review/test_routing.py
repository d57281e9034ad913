"""Each authority class reaches review (or not) as its policy says."""

import random
import uuid

import pytest

from jobs.hooks import review_state_for
from jobs.models import Job, ReviewState, Status
from review.models import ReviewPolicy
from tests.factories import JobFactory, member_of
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db


def test_draft_always_waits_for_review(workspace, submitter):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="draft_support_reply")
    assert (job.status, job.review_state) == (Status.NEEDS_REVIEW, ReviewState.PENDING)


def test_external_effect_always_waits_for_review(workspace, submitter):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    assert (job.status, job.review_state) == (Status.NEEDS_REVIEW, ReviewState.PENDING)


def test_read_only_completes_without_review(workspace, submitter):
    job = make_draft(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input={"title": "Plain", "document": "Nothing secret."},
    )
    assert (job.status, job.review_state) == (Status.COMPLETED, ReviewState.NOT_REQUIRED)


def test_read_only_with_sensitive_input_waits_for_review(workspace, submitter):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="summarize_document")
    assert job.is_sensitive
    assert (job.status, job.review_state) == (Status.NEEDS_REVIEW, ReviewState.PENDING)


def test_policy_can_waive_review_of_sensitive_read_only_input(workspace, submitter):
    ReviewPolicy.objects.create(job_type="summarize_document", review_sensitive_input=False)
    job = make_draft(workspace=workspace, submitter=submitter, job_type="summarize_document")
    assert (job.status, job.review_state) == (Status.COMPLETED, ReviewState.NOT_REQUIRED)


def test_sampled_out_low_risk_write_completes_as_not_sampled(workspace, submitter):
    ReviewPolicy.objects.create(job_type="tag_ticket", sample_rate=0)
    job = make_draft(workspace=workspace, submitter=submitter, job_type="tag_ticket")
    assert (job.status, job.review_state) == (Status.COMPLETED, ReviewState.NOT_SAMPLED)


def test_sampled_in_low_risk_write_waits_for_review(workspace, submitter):
    ReviewPolicy.objects.create(job_type="tag_ticket", sample_rate=1)
    job = make_draft(workspace=workspace, submitter=submitter, job_type="tag_ticket")
    assert (job.status, job.review_state) == (Status.NEEDS_REVIEW, ReviewState.PENDING)


def _seeded_jobs(workspace, count, seed):
    rng = random.Random(seed)
    submitter = member_of(workspace)
    return [
        Job(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            workspace=workspace,
            submitter=submitter,
            job_type="tag_ticket",
            authority_class="low_risk_write",
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize(("override", "expected"), [(None, 0.2), (0.5, 0.5), (0.05, 0.05)])
def test_sampled_review_lands_near_the_configured_rate(workspace, override, expected):
    if override is not None:
        ReviewPolicy.objects.create(job_type="tag_ticket", sample_rate=override)
    jobs = _seeded_jobs(workspace, 1000, seed=20261105)
    sampled = sum(review_state_for(job) == ReviewState.PENDING for job in jobs)
    # Binomial(1000, p): three standard deviations is at most ±4.8 points.
    assert abs(sampled / 1000 - expected) < 0.048, sampled


def test_sampling_is_stable_for_one_job(workspace):
    job = JobFactory(workspace=workspace, job_type="tag_ticket", authority_class="low_risk_write")
    assert len({review_state_for(job) for _ in range(20)}) == 1
