"""What each person sees agrees with what happened, in Chromium: a background job's status as
the provider works on it, a failure with nothing left to retry, a rejection, an action that needs
confirming, bulk approval from the keyboard, where a reviewer lands, tokens, and the bell."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from playwright.sync_api import expect

from accounts.models import ApiToken, Role
from jobs import execution
from jobs.execution.provider.client import close_poll_client
from jobs.models import FailureKind, Job, ReviewState, Status, WebhookReceipt
from notifications.models import Notification
from review import services as review
from review.models import ReviewPolicy
from tests.browser.conftest import badge, log_in_with_form
from tests.factories import JobFactory, member_of
from tests.jobs import progress
from tests.processes import wait_for
from tests.review.drafts import make_draft

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each status change the page shows, in order, recorded in the page as it happens.
RECORD_BADGES = """() => {
  window.__badges = [];
  const note = () => {
    const badge = document.querySelector("[data-status-badge]");
    const text = badge ? badge.textContent.trim() : null;
    if (text && window.__badges[window.__badges.length - 1] !== text) window.__badges.push(text);
  };
  note();
  new MutationObserver(note).observe(document.body, {
    subtree: true, childList: true, characterData: true,
  });
}"""


def off_the_page_loop(work, *args, **kwargs):
    """Run worker code (which runs its own event loop) in a thread of its own: Playwright's
    loop is running in this one."""

    def run():
        try:
            return work(*args, **kwargs)
        finally:
            close_poll_client()
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def status_line(page):
    return page.locator("[data-status-line]")


@pytest.mark.parametrize("webhooks", [False, True], ids=["polling", "webhooks"])
def test_a_background_job_shows_queued_running_completed_with_every_marker_timed(
    page, log_in, alice, fake, settings, live_server, webhooks, screenshot
):
    settings.OPENAI_WEBHOOKS_ENABLED = webhooks
    if webhooks:  # deliveries go to this process's server, which has webhooks on
        fake.configure(
            webhook_url=live_server.url + "/webhooks/openai/",
            webhook_secret=settings.OPENAI_WEBHOOK_SECRET,
        )
    log_in(alice).goto("/jobs/new/summarize_document/")
    page.get_by_label("Document title").fill("Board minutes")
    # The model waits a second before it starts, then works for four.
    page.get_by_label("Document text").fill("We met. [fake:queued_for=1;duration=5]")
    page.get_by_role("button", name="Submit job").click()
    expect(badge(page)).to_have_text("Queued")
    page.evaluate(RECORD_BADGES)
    job = Job.objects.get()

    off_the_page_loop(execution.dispatch_job, job.pk)
    expect(status_line(page)).to_have_text("Sent to the model; Steward has not seen it start yet.")
    screenshot(page, "job-page-queued")

    def job_is(status):
        def check():
            off_the_page_loop(execution.run_pump, seconds=0.2, owner="test-pump")
            return Job.objects.get(pk=job.pk).status == status

        return check

    wait_for(job_is(Status.RUNNING), timeout=20, interval=0, message="the model started")
    expect(badge(page)).to_have_text("Running")
    expect(page.locator('[data-marker="working"] time')).to_be_visible()
    screenshot(page, "job-page-running")
    wait_for(job_is(Status.COMPLETED), timeout=30, interval=0, message="the model finished")
    expect(badge(page)).to_have_text("Completed")

    assert page.evaluate("window.__badges") == ["Queued", "Running", "Completed"]
    markers = page.locator("[data-marker]")
    for n in range(markers.count()):
        marker = markers.nth(n)
        expect(marker).to_have_class(re.compile("is-done"))
        expect(marker.locator("time")).to_have_count(1)
    screenshot(page, "job-page-completed-background")
    if webhooks:
        assert WebhookReceipt.objects.filter(event_type="response.completed").count() == 1


def test_a_failure_with_no_attempts_left_offers_no_retry(
    page, log_in, alice, workspace, screenshot
):
    job = JobFactory(workspace=workspace, submitter=alice, input_summary="Flaky job")
    Job.objects.filter(pk=job.pk).update(attempt_limit=1)
    attempt = progress.start(Job.objects.get(pk=job.pk))
    progress.fail(job, attempt, kind=FailureKind.PROVIDER, retryable=True, message="Overloaded.")
    assert Job.objects.get(pk=job.pk).status == Status.FAILED

    log_in(alice).goto(f"/jobs/{job.pk}/")
    expect(badge(page)).to_have_text("Failed")
    expect(page.locator("#job-explanation")).to_contain_text("The AI service had a problem")
    expect(page.get_by_role("link", name="Retry")).to_have_count(0)
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    screenshot(page, "job-page-failed-no-attempts-left")


def test_a_rejected_draft_reads_as_a_rejection(page, log_in, alice, workspace, screenshot):
    rita = member_of(workspace, Role.REVIEWER, username="rita")
    job = make_draft(workspace=workspace, submitter=alice)
    review.claim_draft(job=job, reviewer=rita)
    review.reject_draft(job=job, reviewer=rita, reason="Promises a refund we can't give.")

    log_in(alice).goto(f"/jobs/{job.pk}/")
    expect(badge(page)).to_have_text("Rejected")
    expect(status_line(page)).to_have_text("A reviewer rejected the draft; their reason is below.")
    expect(page.locator("#job-explanation")).to_contain_text("Promises a refund we can't give.")
    expect(page.get_by_role("heading", name="The rejected draft")).to_be_visible()
    expect(page.locator("#rejected-draft")).to_contain_text("Sorry your order arrived broken.")
    expect(page.locator("#job-partial")).to_be_hidden()
    expect(page.get_by_text("Part of the answer was produced")).to_have_count(0)
    screenshot(page, "job-page-rejected")


def test_approving_a_refund_confirms_the_effect_first(live_server, new_page, workspace, screenshot):
    alice = member_of(workspace, username="alice")
    morgan = member_of(workspace, Role.ADMIN, username="morgan")
    refund = make_draft(workspace=workspace, submitter=alice, job_type="issue_refund")
    page = new_page()
    log_in_with_form(page, live_server.url, morgan.username)
    page.goto(f"{live_server.url}/review/{refund.pk}/")
    page.keyboard.press("c")
    page.wait_for_selector("text=You hold this draft until")

    page.keyboard.press("a")  # the single key opens the confirmation, it does not approve
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Refund $25.00 to dana@example.test for order A-1001.")
    expect(dialog).to_contain_text("Steward cannot undo it")
    screenshot(page, "review-refund-confirm")
    dialog.get_by_role("button", name="Not yet").click()
    expect(dialog).to_be_hidden()
    assert Job.objects.get(pk=refund.pk).review_state == ReviewState.PENDING

    page.get_by_role("button", name=re.compile("Approve and run the action")).click()
    page.get_by_role("dialog").get_by_role("button", name=re.compile("^Approve: Refund")).click()
    expect(page.get_by_text("Approved. The action runs once in the background")).to_be_visible()
    assert Job.objects.get(pk=refund.pk).review_state == ReviewState.APPROVED


def test_bulk_approve_low_risk_items_with_x(live_server, new_page, workspace, screenshot):
    alice = member_of(workspace, username="alice")
    kim = member_of(workspace, Role.REVIEWER, username="kim")
    ReviewPolicy.objects.create(job_type="tag_ticket", sample_rate=1)
    tags = [make_draft(workspace=workspace, submitter=alice, job_type="tag_ticket")]
    tags.append(make_draft(workspace=workspace, submitter=alice, job_type="tag_ticket"))
    reply = make_draft(workspace=workspace, submitter=alice)
    page = new_page()
    log_in_with_form(page, live_server.url, kim.username)
    page.goto(f"{live_server.url}/review/")
    expect(page.locator("[data-queue-row]")).to_have_count(3)
    for _ in range(3):  # x on every row: only the low-risk ones have a box to tick
        page.keyboard.press("j")
        page.keyboard.press("x")
    expect(page.locator("[data-queue-row] input[type=checkbox]:checked")).to_have_count(2)
    screenshot(page, "review-queue-bulk")
    page.get_by_role("button", name="Approve selected low-risk items").click()
    expect(page.get_by_text("Approved 2 item(s).")).to_be_visible()
    expect(page.locator("[data-queue-row]")).to_have_count(1)
    assert {Job.objects.get(pk=t.pk).status for t in tags} == {Status.COMPLETED}
    assert Job.objects.get(pk=reply.pk).status == Status.NEEDS_REVIEW


def test_a_reviewer_lands_on_the_queue_and_is_told_of_waiting_work(
    page, asgi_server, alice, workspace
):
    rita = member_of(workspace, Role.REVIEWER, username="rita")
    for _ in range(4):
        make_draft(workspace=workspace, submitter=alice)
    log_in_with_form(page, asgi_server.url, rita.username)
    expect(page).to_have_url(re.compile(r"/review/$"))
    expect(page.locator("[data-queue-row]")).to_have_count(4)
    expect(page.locator("[data-unread-count]")).to_have_text("1")
    page.get_by_role("link", name=re.compile("Notifications")).click()
    page.get_by_role("link", name=re.compile("4 drafts waiting for review in Acme Support")).click()
    expect(page).to_have_url(re.compile(r"/review/$"))


def test_reloading_after_creating_a_token_creates_no_second_one(page, log_in, alice):
    log_in(alice).goto("/settings/tokens/")
    page.get_by_label("Name").fill("nightly import")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token")
    expect(secret).to_have_value(re.compile(r"^stw_"))
    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    assert ApiToken.objects.filter(user=alice).count() == 1

    page.get_by_role("link", name="Revoke nightly import").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Revoke “nightly import”?")
    dialog.get_by_role("button", name="Keep it").click()
    assert ApiToken.objects.get(user=alice).revoked_at is None


def test_the_bell_counts_only_what_needs_the_person(page, log_in, alice, workspace):
    finished = JobFactory(workspace=workspace, submitter=alice, input_summary="Board minutes")
    attempt = progress.start(finished)
    progress.stream(finished, "The board ", "met.")
    progress.finish(finished, attempt)
    failed = JobFactory(workspace=workspace, submitter=alice, input_summary="Printer on fire")
    progress.fail(failed, progress.start(failed), message="The tagging tool was unavailable.")
    progress.start(JobFactory(workspace=workspace, submitter=alice, input_summary="Still going"))
    make_draft(workspace=workspace, submitter=alice)  # with a reviewer: nothing for alice to do
    assert Notification.objects.filter(user=alice).count() == 2

    log_in(alice).goto("/")
    expect(page.locator("[data-unread-count]")).to_have_text("2")
    page.goto(f"/jobs/{finished.pk}/")  # reading the job is reading its notice
    expect(page.locator("[data-unread-count]")).to_have_text("1")
    page.goto("/notifications/")
    expect(page.locator(".notif.is-unread")).to_contain_text("Printer on fire")
