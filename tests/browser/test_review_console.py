"""A reviewer works a draft in Chromium; the submitter then reads what was approved."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from jobs.models import Job, Status
from tests.browser.conftest import log_in_with_form
from tests.factories import member_of
from tests.review.drafts import make_draft

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EDITED = (
    "Hi Dana,\n\nSorry your order arrived broken. A replacement ships tomorrow "
    "with express delivery.\n"
)


def test_reviewer_claims_edits_sees_diff_approves_and_submitter_sees_it(
    live_server, new_page, screenshot, workspace, submitter
):
    reviewer = member_of(workspace, Role.REVIEWER, username="rita", first_name="Rita")
    draft = make_draft(workspace=workspace, submitter=submitter)
    make_draft(
        workspace=workspace,
        submitter=submitter,
        input={"customer_name": "Lee", "tone": "formal", "message": "Where is my invoice?"},
    )
    page = new_page()
    log_in_with_form(page, live_server.url, reviewer.username)
    page.click("nav >> text=Review")
    expect(page.locator("[data-queue-row]")).to_have_count(2)  # waits for the page to load
    screenshot(page, "review-queue")

    page.click(f"a[href='/review/{draft.pk}/']")
    page.click("text=Claim for 15 minutes")
    page.wait_for_selector("text=You hold this draft until")
    page.fill("#draft-text", EDITED)
    page.click("text=Save as new version")
    page.wait_for_selector("text=Saved as version 2.")
    diff = page.locator("[data-diff]")
    assert "A replacement ships tomorrow with express delivery" in diff.locator("ins").inner_text()
    assert "We will send a new one today" in diff.locator("del").inner_text()
    screenshot(page, "review-detail-diff")

    page.click("[data-shortcut=approve]")
    page.wait_for_selector("text=Approved version 2")
    draft.refresh_from_db()
    assert draft.status == Status.COMPLETED

    other = new_page()
    log_in_with_form(other, live_server.url, submitter.username)
    other.goto(f"{live_server.url}/jobs/{draft.pk}/")
    body = other.locator("body").inner_text()
    assert "A replacement ships tomorrow with express delivery." in body
    assert "Completed" in body


def test_keyboard_shortcuts_move_and_approve(live_server, new_page, workspace, submitter):
    reviewer = member_of(workspace, Role.REVIEWER, username="kim")
    first = make_draft(workspace=workspace, submitter=submitter)
    make_draft(workspace=workspace, submitter=submitter)
    page = new_page()
    log_in_with_form(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/review/")
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.keyboard.press("c")
    page.wait_for_selector("text=You hold this draft until")
    page.keyboard.press("a")
    page.wait_for_selector("text=Approved version 1")
    assert Job.objects.get(pk=first.pk).status == Status.COMPLETED


def test_model_output_with_script_and_img_onerror_is_text_and_runs_nothing(
    live_server, new_page, screenshot, workspace, submitter
):
    reviewer = member_of(workspace, Role.REVIEWER, username="sam")
    evil = make_draft(
        workspace=workspace,
        submitter=submitter,
        text=(
            "Here is your answer.\n\n<script>window.__pwned=1</script>\n\n"
            'Look: <img src=x onerror="window.__pwned=2"> done.'
        ),
    )
    page = new_page()
    log_in_with_form(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/review/{evil.pk}/")
    output = page.locator("[data-output]")
    assert "<script>window.__pwned=1</script>" in output.inner_text()
    assert 'onerror="window.__pwned=2"' in output.inner_text()
    assert output.locator("script, img").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    screenshot(page, "review-detail-untrusted-output")
