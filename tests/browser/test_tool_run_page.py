"""A tool run as its submitter watches it (Playwright on Debian chromium): the steps appear on
the job page as the model asks for tools and they run, without a reload."""

import pytest
from playwright.sync_api import expect

from demo.models import TicketNote
from jobs import execution
from jobs.models import Job, Status, ToolCall
from tests.browser.conftest import badge
from tests.browser.test_truthful_pages import RECORD_BADGES, off_the_page_loop
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

    reviewed = Job.objects.filter(pk=job.pk, status=Status.NEEDS_REVIEW)
    wait_for(turn(reviewed.exists), timeout=30, interval=0, message="the run to finish")
    expect(badge(page)).to_have_text("Needs review")
    expect(page.locator('[data-tool-call="add_internal_note"]')).to_contain_text("Done")
    expect(page.locator("#timeline")).to_contain_text("Results sent back to the model")
    lookup.locator("summary").click()
    expect(lookup.locator("pre").first).to_contain_text('"order_reference": "A-1042"')
    assert page.evaluate("window.__badges") == ["Queued", "Running", "Needs review"]
    assert TicketNote.objects.filter(job=job).count() == 1
    screenshot(page, "job-page-tool-run-done")
