"""``POST /webhooks/openai/``: verified by the SDK, idempotent by event id, and it makes the
job due at once (polling stays the safety net)."""

import base64
import hashlib
import hmac
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.urls import reverse

from jobs import execution, services
from jobs.models import Attempt, Job, Status, WebhookReceipt
from jobs.queue import shared_broker
from tests.factories import WorkspaceFactory, member_of
from tests.processes import wait_for, web_server

pytestmark = pytest.mark.django_db(transaction=True)

# A signing secret of the tests' own: a server that is not in DEBUG refuses the demo one.
SERVER_SECRET = "whsec_" + base64.b64encode(b"steward-tests-webhook-secret").decode()


@pytest.fixture(autouse=True)
def _webhooks_on(settings):
    settings.OPENAI_WEBHOOKS_ENABLED = True


def signed(payload, *, secret=None, timestamp=None, webhook_id="wh_test_1"):
    secret = secret or settings.OPENAI_WEBHOOK_SECRET
    body = payload if isinstance(payload, str) else json.dumps(payload)
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
        # the model starts on creation: the job runs at once and is looked at sparsely
        input={"title": "T", "document": "Doc [fake:duration=0.2;queued_for=0]"},
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


def post_signed(client, payload):
    body, headers = signed(payload)
    return client.post(reverse("openai-webhook"), body, content_type="application/json", **headers)


def queued_tasks():
    return shared_broker().queue_size()


@pytest.mark.parametrize(
    "payload",
    [
        "[1, 2]",
        "{}",
        '{"id": "evt_1", "type": "response.completed", "data": []}',
        '{"id": "evt_1", "type": "response.completed", "data": {}}',
        '{"id": 7, "type": "response.completed", "data": {"id": "resp_1"}}',
        '{"id": "evt_1", "type": "response.completed", "data": {"id": "resp_' + "x" * 90 + '"}}',
        '{"id": "evt_' + "x" * 120 + '", "type": "response.completed", "data": {"id": "r"}}',
        '{"id": "evt_1", "type": "response.' + "x" * 60 + '", "data": {"id": "r"}}',
        '{"id": "evt\\u0000", "type": "response.completed", "data": {"id": "resp_1"}}',
        '{"id": "evt_1", "type": "response.completed", "data": {"id": "resp_\\ud800"}}',
        '{"id": "evt_1", "type": "response.completed", "data": {"id": "r"}, "x": NaN}',
        "[" * 5000 + "]" * 5000,
        "not json",
    ],
)
def test_a_signed_but_malformed_delivery_is_400_and_stores_nothing(client, db, payload, caplog):
    before = queued_tasks()
    answer = post_signed(client, payload)
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"
    assert "malformed" in answer.json()["detail"]
    assert "Refused a provider webhook" in caplog.text
    assert WebhookReceipt.objects.count() == 0
    assert queued_tasks() == before


def test_a_verified_webhook_for_an_unknown_response_stores_and_enqueues_nothing(
    client, in_flight_job
):
    """Another service's response in a shared OpenAI project: acknowledged (a 4xx would make
    the provider redeliver it for days) at the cost of two reads, nothing else."""
    before = queued_tasks()
    answer = post_signed(client, event("resp_nobody_made_this"))
    assert (answer.status_code, answer.json()) == (200, {"result": "ignored"})
    assert WebhookReceipt.objects.count() == 0
    assert queued_tasks() == before


def test_a_forged_webhook_with_an_unknown_id_enqueues_nothing(client, db):
    before = queued_tasks()
    body, headers = signed(event("resp_forged"), secret=SERVER_SECRET)  # not this server's
    answer = client.post(
        reverse("openai-webhook"), body, content_type="application/json", **headers
    )
    assert answer.status_code == 400
    assert WebhookReceipt.objects.count() == 0
    assert queued_tasks() == before


def test_an_unknown_response_is_adopted_while_a_create_is_unrecorded(client, in_flight_job):
    """A worker that died after its create left an attempt without a response id: a webhook for
    a response Steward does not know may be that one, so it is looked up (jobs.tasks)."""
    attempt = in_flight_job.attempts.get()
    Attempt.objects.filter(pk=attempt.pk).update(
        provider_response_id=None, state=Attempt.State.DISPATCHING
    )
    before = queued_tasks()
    answer = post_signed(client, event(attempt.provider_response_id))
    assert answer.json() == {"result": "adopting"}
    assert queued_tasks() == before + 1


def test_an_event_that_is_not_about_a_response_is_ignored(client, db):
    payload = {"id": "evt_b", "type": "batch.completed", "data": {"id": "batch_1"}}
    assert post_signed(client, payload).json() == {"result": "ignored"}
    assert WebhookReceipt.objects.count() == 0


def test_the_endpoint_is_not_there_while_webhooks_are_off(client, in_flight_job, settings):
    settings.OPENAI_WEBHOOKS_ENABLED = False
    answer = post_signed(client, event(in_flight_job.attempts.get().provider_response_id))
    assert answer.status_code == 404
    assert WebhookReceipt.objects.count() == 0


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
        input={"title": "T", "document": "Doc [fake:duration=0.5;queued_for=0]"},
    )
    execution.dispatch_job(job.pk)

    def completed():
        execution.run_pump(seconds=0.2, owner="test-pump")
        return Job.objects.get(pk=job.pk).status == Status.COMPLETED

    wait_for(completed, timeout=10, interval=0.1, message="webhook-driven completion")
    assert Job.objects.get(pk=job.pk).attempts.get().polls == 1
    assert WebhookReceipt.objects.filter(event_type="response.completed").count() == 1


def _post(port, body, headers):
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        client.request("POST", "/webhooks/openai/", body=body, headers=headers)
        return client.getresponse().status
    finally:
        client.close()


@pytest.mark.pg
def test_a_burst_of_deliveries_wider_than_the_connection_limit_is_all_accepted(
    in_flight_job, role_with_few_connections
):
    """A provider delivering a backlog sends its webhooks at once, and Django's ASGI handler
    runs each request in a thread of its own. If each of them held a database connection, a
    burst wider than PostgreSQL's connection limit would fail with 500s (bench P1 met "too
    many clients"). The web server (uvicorn, as deployed) runs here as a role allowed 12
    connections, and 120 deliveries arrive together: every one must be accepted and recorded."""
    env = {"OPENAI_WEBHOOK_SECRET": SERVER_SECRET, "OPENAI_WEBHOOKS_ENABLED": "true"}
    with web_server(role_with_few_connections, **env) as port:
        response_id = in_flight_job.attempts.get().provider_response_id
        deliveries = []
        for n in range(120):
            body, meta = signed(
                event(response_id, f"evt_{n}"), secret=SERVER_SECRET, webhook_id=f"wh_burst_{n}"
            )
            headers = {
                k.removeprefix("HTTP_").replace("_", "-").lower(): v for k, v in meta.items()
            }
            deliveries.append((body, {**headers, "content-type": "application/json"}))
        start = threading.Barrier(len(deliveries))

        def deliver(delivery):
            start.wait()
            return _post(port, *delivery)

        with ThreadPoolExecutor(len(deliveries)) as pool:
            answers = list(pool.map(deliver, deliveries))
    assert answers == [200] * len(deliveries)
    assert WebhookReceipt.objects.filter(response_id=response_id).count() == len(deliveries)
