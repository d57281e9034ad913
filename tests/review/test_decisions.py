"""Decisions: approve, reject, send back, escalate, bulk approve; four-eyes and approver roles."""

import pytest

from jobs import services as job_services
from jobs.job_types import get_job_type
from jobs.models import Artifact, FailureKind, JobEvent, ReviewState, Status
from review import services
from review.errors import ApproverRoleRequired, NoteRequired, NotReviewable, OwnJob
from review.models import Decision, ReleaseRecord, ReviewPolicy
from tests.factories import member_of
from tests.review.drafts import finish, make_draft

pytestmark = pytest.mark.django_db


def claimed(job, reviewer):
    services.claim_draft(job=job, reviewer=reviewer)
    return job


def test_approving_a_draft_completes_it_with_decision_and_event(draft, reviewer):
    decision = services.approve_draft(job=claimed(draft, reviewer), reviewer=reviewer)
    job = decision.job
    assert (job.status, job.review_state) == (Status.COMPLETED, ReviewState.APPROVED)
    assert (decision.kind, decision.reviewer, decision.artifact_version) == ("approve", reviewer, 1)
    event = JobEvent.objects.filter(job=draft).last()
    assert (event.kind, event.actor, event.to_status) == ("approved", reviewer, "completed")


def test_approving_with_text_saves_an_edit_and_approves_it(draft, reviewer):
    decision = services.approve_draft(
        job=claimed(draft, reviewer), reviewer=reviewer, text="Hi Dana, a new one ships today."
    )
    assert decision.kind == Decision.Kind.EDIT_APPROVE
    assert decision.artifact.version == 2
    assert decision.artifact.text == "Hi Dana, a new one ships today."
    assert decision.artifact.created_by == reviewer


def test_four_eyes_refuses_self_approval(workspace):
    reviewer = member_of(workspace, "reviewer")
    own = make_draft(workspace=workspace, submitter=reviewer)
    with pytest.raises(OwnJob, match="another reviewer must decide"):
        services.approve_draft(job=own, reviewer=reviewer)
    own.refresh_from_db()
    assert own.status == Status.NEEDS_REVIEW
    assert not Decision.objects.filter(job=own).exists()


def test_four_eyes_applies_to_admins_too(workspace):
    admin = member_of(workspace, "admin")
    own = make_draft(workspace=workspace, submitter=admin)
    with pytest.raises(OwnJob):
        services.claim_draft(job=own, reviewer=admin)


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reject_requires_a_reason(draft, reviewer, reason):
    with pytest.raises(NoteRequired, match="reason"):
        services.reject_draft(job=claimed(draft, reviewer), reviewer=reviewer, reason=reason)
    draft.refresh_from_db()
    assert draft.status == Status.NEEDS_REVIEW


def test_reject_fails_the_job_as_review_with_the_reason(draft, reviewer):
    decision = services.reject_draft(
        job=claimed(draft, reviewer), reviewer=reviewer, reason="Promises a refund we can't give."
    )
    job = decision.job
    assert (job.status, job.failure_kind) == (Status.FAILED, FailureKind.REVIEW)
    assert "Promises a refund we can't give." in job.failure_reason
    assert job.review_state == ReviewState.REJECTED
    assert decision.note == "Promises a refund we can't give."
    assert JobEvent.objects.filter(job=draft, kind="rejected", actor=reviewer).exists()


def test_send_back_records_notes_for_the_next_attempts_instructions(draft, reviewer):
    notes = "Offer a replacement, not a refund."
    decision = services.send_back(job=claimed(draft, reviewer), reviewer=reviewer, notes=notes)
    job = decision.job
    assert (job.status, job.review_state) == (Status.QUEUED, ReviewState.SENT_BACK)
    assert job_services.reviewer_notes_for(job) == [notes]
    spec = get_job_type(job.job_type)
    instructions = spec.render_instructions(job.input, reviewer_notes=[notes])
    assert notes in instructions
    event = JobEvent.objects.filter(job=draft, kind="sent_back").get()
    assert (event.actor, event.data["notes"]) == (reviewer, notes)


def test_send_back_creates_a_new_attempt_carrying_the_notes(draft, reviewer):
    notes = "Mention the tracking number."
    services.send_back(job=claimed(draft, reviewer), reviewer=reviewer, notes=notes)
    job = finish(draft, text="Hi Dana, here is your tracking number.")
    second = job.attempts.get(number=2)
    assert notes in second.instructions
    assert (job.status, job.review_state) == (Status.NEEDS_REVIEW, ReviewState.PENDING)


def test_send_back_requires_notes(draft, reviewer):
    with pytest.raises(NoteRequired):
        services.send_back(job=claimed(draft, reviewer), reviewer=reviewer, notes=" ")


def test_send_back_without_attempts_left_is_refused_with_a_message(draft, reviewer):
    from jobs.errors import TransitionNotAllowed
    from jobs.models import Job

    Job.objects.filter(pk=draft.pk).update(attempt_limit=1)
    with pytest.raises(TransitionNotAllowed, match="used all 1 of its attempts"):
        services.send_back(job=claimed(draft, reviewer), reviewer=reviewer, notes="Again.")
    assert not Decision.objects.filter(job=draft).exists()


def test_escalate_hands_the_draft_to_admins_only(draft, reviewer, other_reviewer, admin):
    decision = services.escalate(
        job=claimed(draft, reviewer), reviewer=reviewer, note="Legal wording?"
    )
    assert decision.job.review_state == ReviewState.ESCALATED
    assert JobEvent.objects.filter(job=draft, kind="escalated", actor=reviewer).exists()
    with pytest.raises(ApproverRoleRequired, match="escalated to an admin"):
        services.claim_draft(job=draft, reviewer=other_reviewer)
    services.claim_draft(job=draft, reviewer=admin)
    assert services.approve_draft(job=draft, reviewer=admin).job.status == Status.COMPLETED


def test_external_effect_approval_needs_admin_by_default(workspace, submitter, reviewer):
    refund = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    services.claim_draft(job=refund, reviewer=reviewer)
    with pytest.raises(ApproverRoleRequired, match="needs the admin role"):
        services.approve_draft(job=refund, reviewer=reviewer)
    assert not ReleaseRecord.objects.exists()


def test_policy_can_let_reviewers_approve_external_effects(workspace, submitter, reviewer):
    ReviewPolicy.objects.create(job_type="issue_refund", approver_role="reviewer")
    refund = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    decision = services.approve_draft(job=claimed(refund, reviewer), reviewer=reviewer)
    assert decision.job.review_state == ReviewState.APPROVED


def test_approving_an_external_effect_waits_for_the_release(workspace, submitter, admin):
    refund = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    decision = services.approve_draft(job=claimed(refund, admin), reviewer=admin)
    job = decision.job
    assert (job.status, job.review_state) == (Status.NEEDS_REVIEW, ReviewState.APPROVED)
    assert ReleaseRecord.objects.get(job=refund).state == ReleaseRecord.State.PENDING
    assert job.ledger_entries.count() == 0
    with pytest.raises(NotReviewable, match="waiting for its action to run"):
        services.claim_draft(job=refund, reviewer=admin)


def test_decided_job_cannot_be_decided_again(draft, reviewer, other_reviewer):
    services.approve_draft(job=claimed(draft, reviewer), reviewer=reviewer)
    with pytest.raises(NotReviewable, match="no longer waiting for review"):
        services.reject_draft(job=draft, reviewer=other_reviewer, reason="Too late.")


def test_bulk_approve_checks_every_item(workspace, submitter, reviewer, other_reviewer):
    ReviewPolicy.objects.create(job_type="tag_ticket", sample_rate=1)
    free = make_draft(workspace=workspace, submitter=submitter, job_type="tag_ticket")
    held = make_draft(workspace=workspace, submitter=submitter, job_type="tag_ticket")
    own = make_draft(workspace=workspace, submitter=reviewer, job_type="tag_ticket")
    reply = make_draft(workspace=workspace, submitter=submitter)
    services.claim_draft(job=held, reviewer=other_reviewer)

    outcomes = services.bulk_approve(jobs=[free, held, own, reply], reviewer=reviewer)

    assert [o.approved for o in outcomes] == [True, False, False, False]
    assert "Otto is working on this draft" in outcomes[1].message
    assert "four-eyes" in outcomes[2].message
    assert "low-risk" in outcomes[3].message
    free.refresh_from_db()
    assert free.status == Status.COMPLETED
    assert Decision.objects.filter(reviewer=reviewer).count() == 1


def test_edit_adds_a_version_and_keeps_the_models(draft, reviewer):
    claimed(draft, reviewer)
    edited = services.edit_draft(job=draft, reviewer=reviewer, text="Hi Dana, sorry!")
    again = services.edit_draft(job=draft, reviewer=reviewer, text="Hi Dana, sorry!")
    texts = list(
        Artifact.objects.filter(job=draft, kind="text").order_by("version").values_list("text")
    )
    assert edited.version == 2 and again.pk == edited.pk
    assert len(texts) == 2 and texts[0][0].startswith("Hi Dana,\n\nSorry")
    assert JobEvent.objects.filter(job=draft, kind="edited", actor=reviewer).count() == 1


def test_edit_refuses_empty_text(draft, reviewer):
    with pytest.raises(NoteRequired, match="can't be empty"):
        services.edit_draft(job=claimed(draft, reviewer), reviewer=reviewer, text="  \n")
