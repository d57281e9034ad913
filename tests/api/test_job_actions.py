"""Cancel, retry and archive over the API: the same services (and audit trail) as the pages."""

import pytest
from django.test import Client

from jobs.models import Status
from tests.api.conftest import bearer, post_json
from tests.api.test_jobs import client_for
from tests.factories import JobFactory

# action → a status the action is allowed from, and the status it leads to
ALLOWED = {
    "cancel": (Status.QUEUED, Status.CANCELED),
    "retry": (Status.FAILED, Status.QUEUED),
    "archive": (Status.COMPLETED, Status.COMPLETED),
}


@pytest.mark.parametrize("action", list(ALLOWED))
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("member", 200),
        ("reviewer", 404),
        ("admin", 200),
        ("outsider", 404),
        ("anonymous", 401),
        ("revoked", 401),
    ],
)
def test_action_by_role(people, workspace, action, role, expected):
    start, end = ALLOWED[action]
    job = JobFactory(
        workspace=workspace, submitter=people["member"], status=start, failure_retryable=True
    )
    response = post_json(client_for(role, **people), f"/api/v1/jobs/{job.pk}/{action}")
    assert response.status_code == expected, response.json()
    job.refresh_from_db()
    if expected == 200:
        assert response.json()["status"] == end == job.status
        actor = job.events.latest("id").actor
        assert actor == people[role]
    else:
        assert job.status == start and not job.events.exists()


def test_archive_hides_the_job_from_the_default_list(api, member, workspace):
    job = JobFactory(workspace=workspace, submitter=member, status=Status.COMPLETED)
    assert post_json(api, f"/api/v1/jobs/{job.pk}/archive").json()["is_archived"] is True
    assert api.get("/api/v1/jobs").json()["results"] == []


@pytest.mark.parametrize(
    ("action", "status", "message"),
    [
        ("cancel", Status.COMPLETED, "This job is completed, so it can't be canceled."),
        ("retry", Status.RUNNING, "This job is running, so it can't be retried."),
        (
            "archive",
            Status.RUNNING,
            "This job is running; only finished jobs can be archived.",
        ),
    ],
)
def test_illegal_action_is_409_with_the_services_message(
    api, member, workspace, action, status, message
):
    job = JobFactory(workspace=workspace, submitter=member, status=status)
    response = post_json(api, f"/api/v1/jobs/{job.pk}/{action}")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body == {
        "type": "urn:steward:problem:transition-not-allowed",
        "title": "Action not allowed now",
        "status": 409,
        "detail": message,
    }
    job.refresh_from_db()
    assert job.status == status


def test_retry_without_attempts_left_is_409_saying_so(api, member, workspace):
    job = JobFactory(
        workspace=workspace,
        submitter=member,
        status=Status.FAILED,
        attempt_count=3,
        failure_retryable=True,
    )
    assert api.get(f"/api/v1/jobs/{job.pk}").json()["actions"] == ["archive"]
    response = post_json(api, f"/api/v1/jobs/{job.pk}/retry")
    assert response.status_code == 409
    assert "used all 3 of its attempts" in response.json()["detail"]


def test_a_failure_retrying_cannot_fix_is_not_retried(api, member, workspace):
    """Bad input fails the same way every time: neither the API nor the page offers Retry, and
    a retry sent anyway is refused with the reason."""
    job = JobFactory(
        workspace=workspace, submitter=member, status=Status.FAILED, failure_kind="input"
    )
    assert api.get(f"/api/v1/jobs/{job.pk}").json()["actions"] == ["archive"]
    response = post_json(api, f"/api/v1/jobs/{job.pk}/retry")
    assert response.status_code == 409
    assert "would fail the same way" in response.json()["detail"]
    job.refresh_from_db()
    assert job.status == Status.FAILED


def test_actions_answer_only_post(api, member, workspace):
    job = JobFactory(workspace=workspace, submitter=member)
    response = api.get(f"/api/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 405
    assert response.json()["title"] == "Method not allowed"
    assert "POST" in response["Allow"]


AUDIT_FIELDS = ("kind", "from_status", "to_status", "actor", "actor_label", "message", "data")


@pytest.mark.parametrize("action", list(ALLOWED))
def test_api_and_web_page_leave_identical_audit_events(member, workspace, action):
    start, _ = ALLOWED[action]
    via_api = JobFactory(
        workspace=workspace, submitter=member, status=start, failure_retryable=True
    )
    via_page = JobFactory(
        workspace=workspace, submitter=member, status=start, failure_retryable=True
    )

    assert post_json(bearer(member), f"/api/v1/jobs/{via_api.pk}/{action}").status_code == 200
    browser = Client()
    browser.force_login(member)
    assert browser.post(f"/jobs/{via_page.pk}/{action}/").status_code == 302

    def trail(job):
        return list(job.events.order_by("id").values(*AUDIT_FIELDS))

    assert trail(via_api) == trail(via_page)
    assert len(trail(via_api)) == 1
