"""Claims: one reviewer works a draft at a time, for a lease that can be renewed and expires."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from jobs.models import JobEvent
from review import services
from review.errors import ClaimExpired, ClaimHeld, ClaimRequired, NotAReviewer, OwnJob
from review.models import CLAIM_LEASE, ReviewClaim
from tests.factories import WorkspaceFactory, member_of

pytestmark = pytest.mark.django_db


def test_claim_gives_a_lease_and_records_an_event(draft, reviewer):
    claim = services.claim_draft(job=draft, reviewer=reviewer)
    assert claim.reviewer == reviewer
    assert claim.expires_at - claim.claimed_at == CLAIM_LEASE
    event = JobEvent.objects.filter(job=draft).last()
    assert (event.kind, event.actor) == ("claimed", reviewer)


def test_second_reviewer_sees_who_holds_the_claim(draft, reviewer, other_reviewer):
    services.claim_draft(job=draft, reviewer=reviewer)
    with pytest.raises(ClaimHeld, match="Rita is working on this draft"):
        services.claim_draft(job=draft, reviewer=other_reviewer)
    with pytest.raises(ClaimHeld):
        services.approve_draft(job=draft, reviewer=other_reviewer)


def test_claiming_again_renews_instead_of_duplicating(draft, reviewer):
    first = services.claim_draft(job=draft, reviewer=reviewer)
    again = services.claim_draft(job=draft, reviewer=reviewer)
    assert again.pk == first.pk and again.renewals == 1
    assert ReviewClaim.objects.filter(job=draft).count() == 1


def test_claim_expires_and_then_another_reviewer_may_claim(draft, reviewer, other_reviewer):
    services.claim_draft(job=draft, reviewer=reviewer)
    with time_machine.travel(timezone.now() + CLAIM_LEASE + timedelta(seconds=1)):
        with pytest.raises(ClaimExpired, match="Your claim on this draft expired"):
            services.approve_draft(job=draft, reviewer=reviewer)
        with pytest.raises(ClaimExpired):
            services.renew_claim(job=draft, reviewer=reviewer)
        taken = services.claim_draft(job=draft, reviewer=other_reviewer)
    assert taken.reviewer == other_reviewer
    expired = ReviewClaim.objects.get(job=draft, reviewer=reviewer)
    assert expired.end == ReviewClaim.End.EXPIRED
    assert JobEvent.objects.filter(job=draft, kind="claim_expired").exists()


def test_renewing_moves_the_expiry(draft, reviewer):
    claim = services.claim_draft(job=draft, reviewer=reviewer)
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        renewed = services.renew_claim(job=draft, reviewer=reviewer)
    assert renewed.expires_at > claim.expires_at + timedelta(minutes=9)


def test_release_returns_the_draft_to_the_queue(draft, reviewer, other_reviewer):
    services.claim_draft(job=draft, reviewer=reviewer)
    services.release_claim(job=draft, reviewer=reviewer)
    assert services.claim_draft(job=draft, reviewer=other_reviewer).reviewer == other_reviewer
    assert JobEvent.objects.filter(job=draft, kind="claim_released", actor=reviewer).exists()


def test_releasing_someone_elses_claim_is_refused(draft, reviewer, other_reviewer):
    services.claim_draft(job=draft, reviewer=reviewer)
    with pytest.raises(ClaimRequired):
        services.release_claim(job=draft, reviewer=other_reviewer)


def test_deciding_without_a_claim_asks_for_one(draft, reviewer):
    with pytest.raises(ClaimRequired, match="Claim this draft"):
        services.approve_draft(job=draft, reviewer=reviewer)


def test_submitter_cannot_claim_their_own_job(draft, workspace):
    draft.submitter.memberships.update(role="reviewer")
    with pytest.raises(OwnJob, match="four-eyes"):
        services.claim_draft(job=draft, reviewer=draft.submitter)


def test_reviewer_of_another_workspace_cannot_claim(draft):
    outsider = member_of(WorkspaceFactory(), "reviewer")
    with pytest.raises(NotAReviewer):
        services.claim_draft(job=draft, reviewer=outsider)


def test_plain_member_cannot_claim(draft, workspace):
    with pytest.raises(NotAReviewer):
        services.claim_draft(job=draft, reviewer=member_of(workspace))
