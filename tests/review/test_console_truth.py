"""The review console says what will happen and what happened, in the app's own words."""

import re

import pytest
from django.urls import reverse

from jobs import services as job_services
from jobs.models import ReviewState
from review import services
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db
REFUND = "Refund $25.00 to dana@example.test for order A-1001."


@pytest.fixture
def refund(workspace, submitter, admin):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    services.claim_draft(job=job, reviewer=admin)
    return job


def test_approving_a_refund_asks_to_confirm_the_effect_first(client, refund, admin):
    client.force_login(admin)
    url = reverse("review:approve", args=[refund.pk])
    asked = client.post(url, {"text": "Refund approved."})
    html = asked.content.decode()
    assert asked.status_code == 200 and 'id="confirm-effect"' in html
    assert REFUND in html and "Steward cannot undo it" in html
    refund.refresh_from_db()
    assert refund.review_state == ReviewState.PENDING  # nothing approved, nothing run
    client.post(url, {"text": "Refund approved.", "confirmed": "1"})
    refund.refresh_from_db()
    assert refund.review_state == ReviewState.APPROVED


def test_the_refund_page_states_the_effect_in_its_confirmation_dialog(client, refund, admin):
    client.force_login(admin)
    html = client.get(reverse("review:detail", args=[refund.pk])).content.decode()
    dialog = re.search(r'<dialog id="confirm-approve".*?</dialog>', html, re.S)[0]
    assert REFUND in dialog and 'name="confirmed" value="1"' in dialog


def test_the_review_timeline_uses_the_apps_labels_and_collapses_streamed_text(
    client, workspace, submitter, reviewer
):
    job = make_draft(workspace=workspace, submitter=submitter)
    for seq, text in enumerate(["Hi ", "Dana, ", "sorry ", "about ", "that."], start=1):
        job_services.record_event(
            job, "partial_output", actor="system:stream", data={"seq": seq, "text": text}
        )
    client.force_login(reviewer)
    html = client.get(reverse("review:detail", args=[job.pk])).content.decode()
    timeline = re.search(r'<ol class="timeline">.*?</ol>', html, re.S)[0]
    assert "Attempt started" in timeline and "Waiting for review" in timeline
    assert "Model wrote" in timeline and "5 parts streamed." in timeline
    assert timeline.count("tl-partial_output") == 1
    shown = re.sub(r"<[^>]+>", " ", timeline)  # what the reviewer reads
    for raw in ("attempt_started", "needs_review", "system:", "partial_output"):
        assert raw not in shown
