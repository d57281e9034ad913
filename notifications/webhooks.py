"""Signing and sending one outgoing webhook (the Standard Webhooks scheme).

Headers: ``webhook-id`` (the same on every retry of a message, so receivers can drop
duplicates), ``webhook-timestamp`` (seconds) and ``webhook-signature`` (``v1,<base64 HMAC>`` of
``id.timestamp.body`` with the endpoint's secret). Receivers verify with
``standardwebhooks.Webhook(secret).verify(body, headers)``.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "Steward-Webhooks/1.0"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None
    error: str


def encode(payload):
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def signed_headers(*, secret, message_id, body, now=None):
    now = now or datetime.now(tz=UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }


def send(*, url, secret, message_id, payload):
    """POST the signed payload once. Any 2xx is delivered; everything else is an error string."""
    body = encode(payload)
    headers = signed_headers(secret=secret, message_id=message_id, body=body)
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT)
    except httpx.TimeoutException:
        return SendResult(False, None, "The endpoint did not answer in time.")
    except httpx.HTTPError as error:
        return SendResult(False, None, f"Could not connect: {error}"[:500])
    if 200 <= response.status_code < 300:
        return SendResult(True, response.status_code, "")
    snippet = " ".join(response.text[:200].split())
    error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
    return SendResult(False, response.status_code, error[:500])
