"""``POST /webhooks/openai/``: verified by the SDK, idempotent by event id, and it makes the
job due at once (polling stays the safety net)."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.conf import settings
from django.urls import reverse

from jobs import execution, services
from jobs.models import Job, Status, WebhookReceipt
from tests.factories import WorkspaceFactory, member_of
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def signed(payload, *, secret=None, timestamp=None, webhook_id="wh_test_1"):
    secret = secret or settings.OPENAI_WEBHOOK_SECRET
    body = json.dumps(payload)
    timestamp = str(int(timestamp or time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    headers = {
        "HTTP_WEBHOOK_ID": webhook_id,
        "HTTP_WEBHOOK_TIMESTAMP": timestamp,
        "HTTP_WEBHOOK_SIGNATURE": "v1," + base64.b64encode(mac).decode(),
    }
    return body, headers


def event(response_id, event_id="evt_1"):
    return {
        "id": event_id,
        "object": "event",
        "type": "response.completed",
        "created_at": int(time.time()),
        "data": {"id": response_id},
    }


@pytest.fixture
def in_flight_job(fake, settings):
    settings.OPENAI_WEBHOOKS_ENABLED = True  # sparse safety-net polling
    workspace = WorkspaceFactory()
    job = services.submit_job(
        workspace=workspace,
        submitter=member_of(workspace),
        job_type="summarize_document",
        input={"title": "T", "document": "Doc [fake:duration=0.2]"},
    )
    execution.dispatch_job(job.pk)
    return Job.objects.get(pk=job.pk)


def test_verified_webhook_makes_the_job_due_now(client, in_flight_job):
    response_id = in_flight_job.attempts.get().provider_response_id
    assert in_flight_job.next_poll_at.timestamp() > time.time() + 30  # webhooks on: sparse
    body, headers = signed(event(response_id))
    answer = client.post(
        reverse("openai-webhook"), body, content_type="application/json", **headers
    )
    assert answer.status_code == 200 and answer.json() == {"result": "due"}
    job = Job.objects.get(pk=in_flight_job.pk)
    assert job.next_poll_at.timestamp() <= time.time()


def test_duplicate_delivery_is_accepted_once(client, in_flight_job):
    response_id = in_flight_job.attempts.get().provider_response_id
    body, headers = signed(event(response_id))
    url = reverse("openai-webhook")
    first = client.post(url, body, content_type="application/json", **headers)
    second = client.post(url, body, content_type="application/json", **headers)
    assert first.json()["result"] == "due" and second.json()["result"] == "duplicate"
    assert WebhookReceipt.objects.count() == 1


@pytest.mark.parametrize("forgery", ["bad_signature", "stale", "missing_headers", "wrong_secret"])
def test_forged_or_stale_webhook_is_refused_without_state_change(client, in_flight_job, forgery):
    response_id = in_flight_job.attempts.get().provider_response_id
    before = Job.objects.get(pk=in_flight_job.pk).next_poll_at
    body, headers = signed(event(response_id))
    if forgery == "bad_signature":
        headers["HTTP_WEBHOOK_SIGNATURE"] = "v1," + base64.b64encode(b"x" * 32).decode()
    elif forgery == "stale":
        body, headers = signed(event(response_id), timestamp=time.time() - 3600)
    elif forgery == "missing_headers":
        headers = {}
    else:
        body, headers = signed(
            event(response_id), secret="whsec_" + base64.b64encode(b"another-secret").decode()
        )
    answer = client.post(
        reverse("openai-webhook"), body, content_type="application/json", **headers
    )
    assert answer.status_code == 400
    assert WebhookReceipt.objects.count() == 0
    assert Job.objects.get(pk=in_flight_job.pk).next_poll_at == before


def test_fake_server_webhook_drives_completion_with_one_retrieve(live_server, fake, settings):
    settings.OPENAI_WEBHOOKS_ENABLED = True
    fake.configure(
        webhook_url=live_server.url + "/webhooks/openai/",
        webhook_secret=settings.OPENAI_WEBHOOK_SECRET,
    )
    workspace = WorkspaceFactory()
    job = services.submit_job(
        workspace=workspace,
        submitter=member_of(workspace),
        job_type="summarize_document",
        input={"title": "T", "document": "Doc [fake:duration=0.5]"},
    )
    execution.dispatch_job(job.pk)

    def completed():
        execution.run_pump(seconds=0.2, owner="test-pump")
        return Job.objects.get(pk=job.pk).status == Status.COMPLETED

    wait_for(completed, timeout=10, interval=0.1, message="webhook-driven completion")
    assert Job.objects.get(pk=job.pk).attempts.get().polls == 1
    assert WebhookReceipt.objects.filter(event_type="response.completed").count() == 1
