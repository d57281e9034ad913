"""Webhooks: signed deliveries the SDK's ``webhooks.unwrap`` accepts, retries, and bad ones."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from fake_openai_helpers import fast

WEBHOOK_SCHEMAS = {
    "response.completed": "WebhookResponseCompleted",
    "response.failed": "WebhookResponseFailed",
    "response.incomplete": "WebhookResponseIncomplete",
}
SECRET = "whsec_" + base64.b64encode(b"steward-test-webhook-secret-0001").decode()


class Receiver:
    """A tiny webhook endpoint: records every POST, answers scripted statuses then 200."""

    def __init__(self) -> None:
        self.received: queue.Queue = queue.Queue()
        self.script: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.put((dict(self.headers.items()), body))
                status = outer.script.pop(0) if outer.script else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/openai"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def next(self, timeout: float = 5.0) -> tuple[dict, bytes]:
        return self.received.get(timeout=timeout)

    def nothing_within(self, seconds: float) -> bool:
        try:
            self.received.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def receiver(server):
    rx = Receiver()
    server.configure(webhook_url=rx.url, webhook_secret=SECRET, webhook_retry_base=0.1)
    yield rx
    rx.httpd.shutdown()


@pytest.fixture
def verifier(server):
    return openai.OpenAI(api_key="test", base_url=server.base_url, webhook_secret=SECRET)


def _background(client, **meta):
    return client.responses.create(model="m", input="hook me", background=True, metadata=meta)


@pytest.mark.parametrize(
    ("outcome", "event_type"),
    [
        ("completed", "response.completed"),
        ("failed:server_error", "response.failed"),
        ("incomplete:max_output_tokens", "response.incomplete"),
    ],
)
def test_terminal_state_sends_verifiable_webhook(
    client, receiver, verifier, schemas, outcome, event_type
):
    resp = _background(client, fake_duration="0.2", fake_outcome=outcome)
    headers, body = receiver.next()
    schemas.check(WEBHOOK_SCHEMAS[event_type], json.loads(body))
    event = verifier.webhooks.unwrap(body, headers)
    assert event.type == event_type and event.data.id == resp.id
    assert event.id.startswith("evt_") and event.object == "event"
    assert headers["webhook-id"].startswith("wh_")
    assert headers["webhook-signature"].startswith("v1,")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5


def test_cancel_sends_response_cancelled(client, receiver, verifier, schemas):
    resp = _background(client, fake_duration="5")
    client.responses.cancel(resp.id)
    headers, body = receiver.next()
    schemas.check("WebhookResponseCancelled", json.loads(body))
    event = verifier.webhooks.unwrap(body, headers)
    assert event.type == "response.cancelled" and event.data.id == resp.id
    assert receiver.nothing_within(0.3)


def test_non_2xx_is_retried_with_the_same_webhook_id(client, server, receiver, verifier):
    receiver.script = [500, 503]
    resp = _background(client, fake_duration="0.1")
    attempts = [receiver.next() for _ in range(3)]
    ids = {headers["webhook-id"] for headers, _ in attempts}
    assert len(ids) == 1
    event = verifier.webhooks.unwrap(attempts[-1][1], attempts[-1][0])
    assert event.data.id == resp.id
    deadline = time.monotonic() + 2
    while len(server.webhooks()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)  # the fake records an attempt once the receiver has answered
    outcomes = [(d["attempt"], d["outcome"]) for d in server.webhooks()]
    assert outcomes == [(1, "rejected"), (2, "rejected"), (3, "delivered")]


def test_bad_signature_is_rejected_by_unwrap(client, server, receiver, verifier):
    server.configure(webhook_bad_signature=True)
    _background(client, fake_duration="0.1")
    headers, body = receiver.next()
    with pytest.raises(openai.InvalidWebhookSignatureError):
        verifier.webhooks.unwrap(body, headers)


def test_stale_timestamp_is_rejected_by_unwrap(client, server, receiver, verifier):
    server.configure(webhook_stale_timestamp=True)
    _background(client, fake_duration="0.1")
    headers, body = receiver.next()
    assert time.time() - int(headers["webhook-timestamp"]) > 300
    with pytest.raises(openai.InvalidWebhookSignatureError, match="too old"):
        verifier.webhooks.unwrap(body, headers)


def test_duplicates_share_the_webhook_id_and_event_id(client, server, receiver, verifier):
    server.configure(webhook_duplicate_rate=1.0)
    _background(client, fake_duration="0.1")
    first, second = receiver.next(), receiver.next()
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    events = [verifier.webhooks.unwrap(body, headers) for headers, body in (first, second)]
    assert events[0].id == events[1].id


def test_dropped_and_foreground_responses_send_nothing(client, server, receiver):
    client.responses.create(model="m", input="foreground", metadata=fast(fake_duration="0.1"))
    server.configure(webhook_drop_rate=1.0)
    _background(client, fake_duration="0.1")
    assert receiver.nothing_within(0.6)
    assert [d["outcome"] for d in server.webhooks()] == ["dropped"]


def test_delay_postpones_delivery(client, server, receiver):
    server.configure(webhook_delay=0.5)
    started = time.monotonic()
    _background(client, fake_duration="0.1")
    receiver.next()
    assert time.monotonic() - started >= 0.55


def test_each_step_of_a_tool_run_sends_its_webhook(client, receiver, verifier):
    tool = {"type": "function", "name": "lookup_order", "parameters": None, "strict": False}
    meta = fast(fake_duration="0.1")
    first = client.responses.create(
        model="m", input="find it", tools=[tool], background=True, metadata=meta
    )
    headers, body = receiver.next()
    assert verifier.webhooks.unwrap(body, headers).data.id == first.id
    call = client.responses.retrieve(first.id).output[0]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "found"}
    second = client.responses.create(
        model="m",
        input=[output],
        previous_response_id=first.id,
        tools=[tool],
        background=True,
        metadata=meta,
    )
    headers, body = receiver.next()
    event = verifier.webhooks.unwrap(body, headers)
    assert event.type == "response.completed" and event.data.id == second.id
