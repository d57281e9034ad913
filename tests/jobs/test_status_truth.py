"""The job page says what is happening, as its timeline does: retries, a model that has not
started, who must approve, rejections, answers cut short, stopped attempts, line breaks."""

import re
from dataclasses import replace
from decimal import Decimal

import pytest
from django.urls import reverse

from demo.job_types import SUPPORT_REPLY
from jobs import services
from jobs.job_types import register
from jobs.models import Job
from jobs.results import AttemptOutcome, Usage
from review import services as review
from review.release import release_approved
from tests.jobs import progress
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_of(client, submitter):
    def page(job):
        client.force_login(submitter)
        return client.get(reverse("job-detail", args=[job.pk])).content.decode()

    return page


def sentence(html):
    return re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(r"data-status-line>(.*?)</p>", html, re.S)[1])
    ).strip()


def submitted(workspace, submitter, job_type="summarize_document", **inputs):
    return services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type=job_type,
        input=inputs or {"title": "Board minutes", "document": "We met."},
    )


def test_a_retry_after_a_provider_error_says_when_and_which_attempt(page_of, workspace, submitter):
    job = submitted(workspace, submitter)
    attempt = progress.start(job)
    progress.fail(job, attempt, retryable=True, message="The service was busy.")
    job.refresh_from_db()
    html = page_of(job)
    assert sentence(html).startswith(
        "The AI service had a temporary problem with attempt 1. Steward tries again at"
    )
    assert sentence(html).endswith("(attempt 2 of 3).")
    assert f'datetime="{job.next_poll_at.isoformat()}' in html


def test_a_job_the_provider_has_not_started_says_so(page_of, workspace, submitter):
    job = submitted(workspace, submitter)
    attempt = services.begin_attempt(job=job, instructions="…")
    services.record_dispatch(attempt=attempt, response_id="resp_x", provider_status="queued")
    assert sentence(page_of(job)) == "Sent to the model; Steward has not seen it start yet."


def test_a_refund_waiting_for_approval_says_who_must_approve(page_of, workspace, submitter):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    html = page_of(job)
    assert sentence(html) == (
        "Nothing has been done yet: it runs once a workspace admin approves it."
    )
    assert "a reviewer checks it" not in html.lower()


def test_a_rejected_draft_reads_as_a_rejection(page_of, workspace, submitter, reviewer):
    job = make_draft(workspace=workspace, submitter=submitter)
    review.claim_draft(job=job, reviewer=reviewer)
    review.reject_draft(job=job, reviewer=reviewer, reason="Promises a refund we can't give.")
    html = page_of(job)
    assert sentence(html) == "A reviewer rejected the draft; their reason is below."
    assert "A reviewer did not accept the result." in html
    assert "Promises a refund we can&#x27;t give." in html
    assert 'id="rejected-draft"' in html and "The rejected draft" in html
    assert re.search(r'id="job-partial"\s+hidden', html)  # no "answer so far" with a live dot
    assert "Part of the answer was produced" not in html


def test_an_answer_cut_short_is_not_headed_as_no_result(page_of, workspace, submitter):
    job = submitted(workspace, submitter)
    attempt = progress.start(job)
    services.finish_attempt(
        job=job,
        attempt=attempt,
        outcome=AttemptOutcome(
            status="incomplete",
            text="The board met and",
            error_code="max_output_tokens",
            usage=Usage(input_tokens=1, output_tokens=1, cost=Decimal("0")),
        ),
    )
    html = page_of(Job.objects.get(pk=job.pk))
    assert sentence(html) == "It stopped before the answer was complete; what it wrote is below."
    assert "The model stopped before the answer was complete." in html
    assert "It stopped without a result" not in html
    assert "The board met and" in html


def test_an_attempt_of_a_canceled_job_is_not_shown_in_flight(page_of, workspace, submitter):
    job = submitted(workspace, submitter)
    progress.start(job)
    services.cancel_job(job=job, actor=submitter)
    html = page_of(job)
    assert "Stopped: the job was canceled" in html
    assert "In flight" not in html


def test_line_breaks_in_an_approved_draft_are_kept(page_of, workspace, submitter, reviewer):
    job = make_draft(workspace=workspace, submitter=submitter, text="Hi Dana,\n\nBest,\nSupport")
    review.claim_draft(job=job, reviewer=reviewer)
    review.approve_draft(job=job, reviewer=reviewer)
    assert "<p>Best,<br>\nSupport</p>" in page_of(job)


def test_a_streamed_draft_in_review_says_a_reviewer_has_it(page_of, workspace, submitter):
    """The demo's support reply lets its submitter read the draft while it is checked."""
    job = make_draft(workspace=workspace, submitter=submitter)
    html = page_of(job)
    assert "This draft waits for a reviewer. It is not approved yet" in html
    assert 'id="draft-in-review"' in html


@pytest.fixture
def drafts_withheld():
    """The support reply as a job type whose submitter may not read a draft before review."""
    register(replace(SUPPORT_REPLY, submitter_sees_draft_in_review=False))
    yield
    register(SUPPORT_REPLY)


def test_a_draft_its_submitter_may_not_read_stays_off_the_page_and_out_of_its_events(
    page_of, client, workspace, submitter, drafts_withheld
):
    job = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="draft_support_reply",
        input={"customer_name": "Dana", "tone": "friendly", "message": "Late order."},
    )
    attempt = progress.start(job)
    progress.stream(job, "Hi Dana, unreviewed words")
    html = page_of(job)
    assert sentence(html) == "The model is writing a draft; a reviewer checks it before you see it."
    assert "unreviewed words" not in html
    events = client.get(f"/api/v1/jobs/{job.pk}/events").json()["results"]
    partial = next(e for e in events if e["kind"] == "partial_output")
    assert partial["data"] == {"seq": 1, "withheld": True}
    progress.finish(job, attempt, text="Hi Dana, unreviewed words.")
    html = page_of(job)
    assert "The draft waits for a reviewer." in html
    assert "unreviewed words" not in html


def test_the_job_page_shows_what_was_submitted(page_of, workspace, submitter):
    job = submitted(workspace, submitter, title="Board minutes", document="We met on Tuesday.")
    html = page_of(job)
    section = re.search(r'id="job-input".*?</section>', html, re.S)[0]
    assert "Document title" in section and "Board minutes" in section
    assert "We met on Tuesday." in section


def test_sensitive_input_is_shown_only_to_its_submitter(client, workspace, submitter, admin):
    job = submitted(workspace, submitter, title="Salaries", document="Secret.", sensitive=True)
    client.force_login(admin)
    html = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "only they can see it" in html and "Secret." not in html


def test_a_refund_that_ran_says_what_was_done_with_its_ledger_entry(
    page_of, workspace, submitter, admin
):
    job = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    review.claim_draft(job=job, reviewer=admin)
    review.approve_draft(job=job, reviewer=admin)
    release_approved(job_id=job.pk)
    section = re.search(r'id="effect-done".*?</section>', page_of(job), re.S)[0]
    assert "Refund $25.00 to dana@example.test for order A-1001." in section
    assert "Ledger entry" in section
