"""A tool run in the browser (Playwright on Debian chromium): the submitter watches the steps
appear as the model asks for tools and they run, without a reload; a reviewer approves the
email the run waits on, with an edit; the email is written to the outbox once."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from demo.models import OutboxEmail, TicketNote
from jobs import execution
from jobs.models import Job, Status, ToolCall
from tests.browser.conftest import badge
from tests.browser.test_truthful_pages import RECORD_BADGES, off_the_page_loop
from tests.factories import member_of
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_submitter_watches_the_steps_of_a_tool_run_appear(
    page, log_in, alice, fake, screenshot
):
    log_in(alice).goto("/jobs/new/resolve_ticket/")
    page.get_by_label("Order reference").fill("A-1042")
    page.get_by_label("Customer email").fill("dana@example.test")
    page.get_by_label("Customer message").fill("My shoes arrived wet. What happened?")
    page.get_by_role("button", name="Submit job").click()
    expect(badge(page)).to_have_text("Queued")
    page.evaluate(RECORD_BADGES)
    job = Job.objects.get()
    expect(page.locator("#job-steps")).to_contain_text("The steps appear here")

    def work():
        execution.run_pump(seconds=0.2, owner="test-pump")
        for pk in ToolCall.objects.filter(job=job, state=ToolCall.State.PENDING).values_list(
            "pk", flat=True
        ):
            execution.run_tool_call(pk)

    def turn(done):
        def check():
            off_the_page_loop(work)
            return done()

        return check

    off_the_page_loop(execution.dispatch_job, job.pk)
    looked_up = ToolCall.objects.filter(job=job, name="lookup_order", state="succeeded")
    wait_for(turn(looked_up.exists), timeout=30, interval=0, message="the order lookup")
    lookup = page.locator('[data-tool-call="lookup_order"]')
    expect(lookup).to_contain_text("Look up order A-1042")
    expect(lookup).to_contain_text("Done")
    screenshot(page, "job-page-tool-run-step")

    held = Job.objects.filter(pk=job.pk, status=Status.NEEDS_REVIEW)
    wait_for(turn(held.exists), timeout=30, interval=0, message="the run to wait for approval")
    expect(badge(page)).to_have_text("Needs review")
    expect(page.locator('[data-tool-call="add_internal_note"]')).to_contain_text("Done")
    expect(page.locator('[data-tool-call="email_customer"]')).to_contain_text(
        "Waiting for approval"
    )
    expect(page.locator("#timeline")).to_contain_text("Waiting for a reviewer")
    expect(page.locator("[data-status-line]")).to_contain_text("The run is paused")
    lookup.locator("summary").click()
    expect(lookup.locator("pre").first).to_contain_text('"order_reference": "A-1042"')
    assert TicketNote.objects.filter(job=job).count() == 1
    assert not OutboxEmail.objects.exists()
    screenshot(page, "job-page-tool-run-waiting")

    # a reviewer approves the email, with a body of their own
    reviewer = member_of(alice.memberships.get().workspace, Role.REVIEWER, username="rita")
    log_in(reviewer).goto(f"/review/{job.pk}/")
    page.get_by_role("button", name="Claim for").click()
    card = page.locator("#waiting-calls")
    expect(card).to_contain_text("Email the customer at")
    arguments = card.get_by_label("Arguments (JSON")
    edited = arguments.input_value().replace('"body": "', '"body": "Sorry about the wet shoes. ', 1)
    arguments.fill(edited)
    screenshot(page, "review-tool-call-approval")
    card.get_by_role("button", name="Approve this call").click()
    page.get_by_role("dialog").get_by_role("button", name="Approve: Email the customer").click()
    expect(page.locator(".msg")).to_contain_text("Approved with your arguments")

    answered = Job.objects.filter(pk=job.pk, status=Status.NEEDS_REVIEW, artifacts__kind="text")
    wait_for(turn(answered.exists), timeout=30, interval=0, message="the run to finish")
    email = OutboxEmail.objects.get()
    assert email.body.startswith("Sorry about the wet shoes. ")
    execution.run_tool_call(ToolCall.objects.get(job=job, name="email_customer").pk)
    assert OutboxEmail.objects.count() == 1  # a second task changes nothing

    log_in(alice).goto(f"/jobs/{job.pk}/")
    expect(page.locator('[data-tool-call="email_customer"]')).to_contain_text("Done")
    expect(page.locator('[data-tool-call="email_customer"]')).to_contain_text(
        "arguments edited by a reviewer"
    )
    expect(page.locator("#timeline")).to_contain_text("approved with edited arguments")
    screenshot(page, "job-page-tool-run-done")
