"""A submitter's day, in a real browser: log in, submit, watch it live, act on it."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from jobs import services
from jobs.models import FailureKind, Job, JobEvent, Status
from tests.browser.conftest import badge
from tests.factories import JobFactory, member_of
from tests.jobs import progress

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


def keep_page_marker(page):
    """Set a flag that a reload would wipe, to prove the page updated in place."""
    page.evaluate("window.__sameDocument = true")


def assert_not_reloaded(page):
    assert page.evaluate("window.__sameDocument === true")


def test_log_in_submit_and_watch_the_job_finish_live(page, alice, workspace, screenshot):
    page.goto("/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My jobs")).to_be_visible()

    page.get_by_role("link", name="New job").first.click()
    page.get_by_role("link", name=re.compile("Summarize a document")).click()
    page.get_by_label("Document title").fill("Quarterly board minutes")
    page.get_by_label("Document text").fill(
        "The board met on Tuesday. Revenue grew 12%. Hiring is paused until spring."
    )
    screenshot(page, "submit-form")
    page.get_by_role("button", name="Submit job").click()

    expect(badge(page)).to_have_text("Queued")
    job = Job.objects.get()
    expect(page.locator("[data-job-id]")).to_have_text(str(job.pk))
    keep_page_marker(page)

    attempt = progress.start(job)
    expect(badge(page)).to_have_text("Running")
    expect(page.locator('[data-marker="working"]')).to_have_class(re.compile("is-done"))
    progress.finish(
        job, attempt, text="## Summary\n\n- Revenue grew **12%**\n- Hiring paused until spring"
    )
    expect(badge(page)).to_have_text("Completed")
    expect(page.locator("#final-output li").first).to_have_text("Revenue grew 12%")
    expect(page.locator('[data-marker="released"]')).to_have_class(re.compile("is-done"))
    expect(page.locator("#timeline")).to_contain_text("Completed")
    expect(page.locator("#job-attempts")).to_contain_text("Succeeded")
    # The in-app notification arrives: the header count updates without a reload.
    expect(page.locator("[data-unread-count]")).to_have_text("1")
    assert_not_reloaded(page)
    screenshot(page, "job-page-completed")

    page.get_by_role("link", name=re.compile("Notifications")).click()
    expect(page.locator("#notifications")).to_contain_text(
        "Your job “Quarterly board minutes” (Summarize a document) finished"
    )
    page.get_by_role("link", name=re.compile("finished")).click()
    expect(page.locator("[data-job-id]")).to_have_text(str(job.pk))
    expect(page.locator("[data-unread-count]")).to_have_text("0")


def test_partial_output_streams_in(page, log_in, alice, workspace, screenshot):
    """The demo's support reply lets its submitter read the draft while a reviewer checks it
    (tests/jobs/test_status_truth.py covers a job type that does not)."""
    job = services.submit_job(
        workspace=workspace,
        submitter=alice,
        job_type="draft_support_reply",
        input={"customer_name": "Dana", "tone": "friendly", "message": "My order is late."},
    )
    log_in(alice).goto(f"/jobs/{job.pk}/")
    keep_page_marker(page)
    attempt = progress.start(job)
    expect(page.locator("#job-partial")).to_be_visible()
    progress.stream(job, "Hi Dana, ")
    expect(page.locator("#partial-output")).to_have_text("Hi Dana, ")
    services.record_event(
        job, "partial_output", actor="system:stream", data={"seq": 2, "text": "sorry about "}
    )
    services.record_event(
        job, "partial_output", actor="system:stream", data={"seq": 3, "text": "the delay."}
    )
    expect(page.locator("#partial-output")).to_have_text("Hi Dana, sorry about the delay.")
    expect(page.locator("#partial-title")).to_have_text("Draft so far")
    screenshot(page, "job-page-streaming")
    progress.finish(job, attempt, text="Hi Dana, sorry about the delay.")
    expect(badge(page)).to_have_text("Needs review")
    expect(page.locator("#draft-in-review")).to_contain_text("Hi Dana, sorry about the delay.")
    assert_not_reloaded(page)


def test_cancel_a_running_job(page, log_in, alice, workspace):
    job = JobFactory(workspace=workspace, submitter=alice, input_summary="Long report")
    progress.start(job)
    log_in(alice).goto(f"/jobs/{job.pk}/")
    expect(badge(page)).to_have_text("Running")
    page.get_by_role("link", name="Cancel job").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel this job?")
    dialog.get_by_role("button", name="Cancel job").click()
    expect(page.get_by_role("status").filter(has_text="The job was canceled.")).to_be_visible()
    expect(badge(page)).to_have_text("Canceled")
    job.refresh_from_db()
    assert job.status == Status.CANCELED


def test_retry_a_failed_job(page, log_in, alice, workspace):
    job = JobFactory(workspace=workspace, submitter=alice, input_summary="Flaky job")
    attempt = progress.start(job)
    Job.objects.filter(pk=job.pk).update(attempt_limit=2)
    services.fail_job(
        job=job,
        actor="system:poller",
        kind=FailureKind.PROVIDER,
        reason="The AI service was overloaded.",
        retryable=True,
    )
    assert attempt.number == 1
    log_in(alice).goto(f"/jobs/{job.pk}/")
    explanation = page.locator("#job-explanation")
    expect(explanation).to_contain_text("The AI service had a problem")
    expect(explanation).to_contain_text("Retrying is likely to help")
    # one Retry, where the page's controls are: the explanation does not offer a second one
    expect(explanation.get_by_role("link", name="Retry")).to_have_count(0)
    page.locator("#job-controls").get_by_role("link", name="Retry").click()
    page.get_by_role("dialog").get_by_role("button", name="Retry").click()
    expect(badge(page)).to_have_text("Queued")
    job.refresh_from_db()
    assert job.status == Status.QUEUED


def test_validation_error_shows_next_to_the_field(page, log_in, alice, screenshot):
    log_in(alice).goto("/jobs/new/issue_refund/")
    page.get_by_label("Order reference").fill("A-1001")
    page.get_by_label("Customer email").fill("dana@example.com")
    page.get_by_label("Amount (USD)").fill("twelve dollars")
    page.get_by_label("Reason").fill("Arrived broken.")
    page.get_by_role("button", name="Submit job").click()
    amount = page.get_by_label("Amount (USD)")
    expect(amount).to_have_attribute("aria-invalid", "true")
    error = page.locator("#id_amount_error")
    expect(error).to_have_text("Enter a number, like 12.50.")
    expect(error).to_have_attribute("role", "alert")
    assert "id_amount_error" in amount.get_attribute("aria-describedby")
    expect(amount).to_be_focused()
    expect(amount).to_have_value("twelve dollars")  # what they typed is kept
    screenshot(page, "submit-form-error")
    assert Job.objects.count() == 0


def test_double_clicked_submit_creates_one_job(page, log_in, alice):
    log_in(alice).goto("/jobs/new/tag_ticket/")
    page.get_by_label("Ticket subject").fill("Printer on fire")
    page.get_by_label("Ticket text").fill("It is on fire.")
    page.get_by_role("button", name="Submit job").dblclick()
    expect(badge(page)).to_have_text("Queued")
    page.wait_for_load_state("networkidle")
    assert Job.objects.count() == 1


def test_resubmitted_form_creates_one_job(page, log_in, alice):
    """The browser sends the same form again (a retry after a network hiccup, "resend")."""
    log_in(alice).goto("/jobs/new/tag_ticket/")
    page.get_by_label("Ticket subject").fill("Printer jam")
    page.get_by_label("Ticket text").fill("Jammed.")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.get_by_role("button", name="Submit job").click()
    expect(badge(page)).to_have_text("Queued")
    first = sent.value
    again = page.request.post(
        first.url,
        data=first.post_data,
        headers={"content-type": first.headers["content-type"], "referer": first.url},
        max_redirects=0,
    )
    assert again.status == 302
    assert page.url.endswith(again.headers["location"])
    assert Job.objects.count() == 1


def test_reconnecting_after_a_dropped_connection_shows_every_event_once(
    page, log_in, alice, workspace, asgi_server
):
    job = JobFactory(
        workspace=workspace,
        submitter=alice,
        job_type="draft_support_reply",
        authority_class="draft",
        lane="stream",
        input_summary="Dana",
    )
    attempt = progress.start(job)
    progress.stream(job, "One. ")
    log_in(alice).goto(f"/jobs/{job.pk}/")
    keep_page_marker(page)
    expect(page.locator("#live-state")).to_have_text("Live")

    asgi_server.kill()  # every open connection drops
    expect(page.locator("#live-state")).to_have_text("Reconnecting…")
    services.record_event(
        job, "partial_output", actor="system:stream", data={"seq": 2, "text": "Two. "}
    )
    services.record_event(
        job, "partial_output", actor="system:stream", data={"seq": 3, "text": "Three."}
    )
    progress.finish(job, attempt, text="One. Two. Three.")
    asgi_server.start()

    expect(badge(page)).to_have_text("Needs review")
    expect(page.locator("#timeline")).to_contain_text("Waiting for review")
    shown = page.locator("#timeline [data-event-id]").evaluate_all(
        "items => items.map(li => Number(li.dataset.eventId))"
    )
    expected = list(
        JobEvent.objects.filter(job=job).exclude(kind="partial_output").values_list("id", flat=True)
    )
    assert sorted(shown) == expected  # each event exactly once
    assert len(shown) == len(set(shown))

    # A manual drop and resume from the page itself: nothing lost, nothing twice.
    page.evaluate("window.stewardLive.disconnect()")
    services.record_event(job, "claimed", actor="system:test", message="Picked up.")
    page.evaluate("window.stewardLive.connect()")
    expect(page.locator("#timeline")).to_contain_text("Reviewer picked it up")
    page.evaluate("window.stewardLive.connect()")  # reconnect again from the same point
    page.wait_for_timeout(1500)
    shown = page.locator("#timeline [data-event-id]").evaluate_all(
        "items => items.map(li => Number(li.dataset.eventId))"
    )
    assert len(shown) == len(set(shown)) == len(expected) + 1
    assert_not_reloaded(page)


def test_my_jobs_and_phone_width(page, log_in, alice, workspace, screenshot):
    admin = member_of(workspace, role=Role.ADMIN, username="morgan")
    specs = [
        ("Quarterly board minutes", "summarize_document", Status.COMPLETED),
        ("Refund for order A-1001", "issue_refund", Status.NEEDS_REVIEW),
        ("Reply to Dana about a late order", "draft_support_reply", Status.RUNNING),
        ("Printer on fire", "tag_ticket", Status.FAILED),
        ("Onboarding guide", "summarize_document", Status.QUEUED),
        ("Old contract", "summarize_document", Status.CANCELED),
    ]
    for summary, job_type, status in specs:
        JobFactory(
            workspace=workspace,
            submitter=alice,
            input_summary=summary,
            job_type=job_type,
            status=status,
        )
    JobFactory(workspace=workspace, submitter=admin, input_summary="Morgan's own job")
    log_in(alice).goto("/")
    expect(page.locator(".job-link")).to_have_count(6)
    screenshot(page, "my-jobs")

    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".job-link")).to_have_count(1)
    expect(page.locator(".job-link")).to_have_text("Printer on fire")

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "my-jobs-phone")
    page.goto("/jobs/new/summarize_document/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "submit-form-phone")
    job = Job.objects.get(input_summary="Printer on fire")
    page.goto(f"/jobs/{job.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "job-page-phone")


def test_admin_adds_a_webhook_and_sees_its_secret_once(page, log_in, workspace, screenshot):
    admin = member_of(workspace, role=Role.ADMIN, username="morgan")
    log_in(admin).goto("/")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Endpoint URL").fill("https://crm.example.com/hooks/steward")
    page.get_by_label("Description").fill("CRM sync")
    page.get_by_label("A job finished").check()
    page.get_by_label("A job failed").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#new-secret")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    screenshot(page, "webhooks")
    page.reload()
    expect(page.locator("#new-secret")).to_have_count(0)
    expect(page.locator(".endpoint-url")).to_have_text("https://crm.example.com/hooks/steward")


def test_notification_centre(page, log_in, alice, workspace, screenshot):
    for summary in ("Quarterly board minutes", "Printer on fire"):
        job = JobFactory(workspace=workspace, submitter=alice, input_summary=summary)
        attempt = progress.start(job)
        if summary.startswith("Printer"):
            progress.fail(job, attempt, message="The tagging tool was unavailable.")
        else:
            progress.finish(job, attempt)
    log_in(alice).goto("/notifications/")
    expect(page.locator("[data-unread-count]")).to_have_text("2")
    expect(page.locator(".notif.is-unread")).to_have_count(2)
    screenshot(page, "notifications")
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.locator(".notif.is-unread")).to_have_count(0)
    expect(page.locator("[data-unread-count]")).to_have_text("0")
