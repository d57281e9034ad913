"""Django admin as its users see it, in the browser."""

import pytest
from django.contrib.auth import get_user_model

from tests.factories import JobFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_job_list_fits_a_1280_px_window(page, log_in, screenshot):
    """Every column of the admin's job list is on screen at 1280 px, filters beside it: no
    sideways scrolling to reach a job's lane, cost or age."""
    workspace = WorkspaceFactory(name="Northwind Customer Operations")
    for _ in range(3):
        JobFactory(workspace=workspace, job_type="draft_support_reply")
    admin = get_user_model().objects.create_superuser("ada", "ada@example.com", "pw-for-tests-1")
    log_in(admin).goto("/admin/jobs/job/")
    assert page.viewport_size["width"] == 1280
    header = page.locator("#result_list thead th").last
    header.wait_for()
    screenshot(page, "admin-job-list-1280")
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 1280, f"the page is {page_width} px wide"
    right_edge = header.evaluate("th => th.getBoundingClientRect().right")
    visible = page.locator("#changelist .results").evaluate("e => e.getBoundingClientRect().right")
    assert right_edge <= visible, f"the last column ends at {right_edge} px, the list at {visible}"
