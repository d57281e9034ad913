"""A sync-lane job submitted over the API runs inside the request."""

import pytest

from accounts.services import create_api_token
from jobs.execution.provider.client import reset_clients
from jobs.models import Job
from tests.factories import WorkspaceFactory, member_of

pytestmark = pytest.mark.django_db(transaction=True)
BODY = {"job_type": "tag_ticket", "input": {"subject": "Login", "body": "Cannot log in."}}


def submit(client):
    user = member_of(WorkspaceFactory())
    _, secret = create_api_token(user=user, name="t")
    return client.post(
        "/api/v1/jobs",
        BODY,
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def test_sync_lane_job_answers_in_the_same_request(client, fake):
    response = submit(client)
    assert response.status_code == 201
    assert response.json()["status"] in ("completed", "needs_review")


def test_sync_lane_with_provider_down_still_answers_201_and_schedules_a_retry(client, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    reset_clients()
    try:
        response = submit(client)
    finally:
        reset_clients()
    assert response.status_code == 201
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == "queued"
    assert job.events.filter(kind="retry_scheduled").exists()
