"""Signing and sending one outgoing webhook (the Standard Webhooks scheme).

Headers: ``webhook-id`` (the same on every retry of a message, so receivers can drop
duplicates), ``webhook-timestamp`` (seconds) and ``webhook-signature`` (``v1,<base64 HMAC>`` of
``id.timestamp.body`` with the endpoint's secret). Receivers verify with
``standardwebhooks.Webhook(secret).verify(body, headers)``.
"""

import ipaddress
import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from standardwebhooks import Webhook

TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS = 10.0, 5.0
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


def _addresses(host, *, resolve):
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1")]
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []  # the send itself reports that the name does not resolve
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def refusal(url, *, resolve=True):
    """Why Steward will not POST to ``url``, or ``""``.

    Webhook URLs are typed by workspace admins, so a URL that reaches Steward's own network
    (loopback, private ranges, link-local such as the cloud metadata address) is refused unless
    ``WEBHOOK_ALLOW_PRIVATE_TARGETS`` is on. Checked when the URL is saved (literal addresses and
    localhost) and again before every send, after DNS resolution. A name that resolves to a
    public address at check time and to a private one at connect time (DNS rebinding) is not
    caught; an egress proxy is the complete answer."""
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return ""
    host = urlsplit(url).hostname or ""
    for address in _addresses(host, resolve=resolve):
        address = getattr(address, "ipv4_mapped", None) or address
        if not address.is_global:
            return (
                f"Steward does not send webhooks to private or local addresses ({host} is "
                f"{address}). Use an address reachable from the internet."
            )
    return ""


def send(*, url, secret, message_id, payload):
    """POST the signed payload once. Any 2xx is delivered; everything else is an error string."""
    # httpx (and the rich/click/pygments its CLI pulls in) costs a process ~5 MB; imported when
    # the app loads, every task-cluster process paid it. Its first import must not run on one
    # thread while another makes an OpenAI SDK call (the SDK reads sys.modules["httpx"] and
    # fails on a half-initialised module; see notifications.listeners): sends only run in the
    # deliver_webhook task, on the worker's task thread, with no SDK call beside it.
    import httpx2 as httpx

    refused = refusal(url)
    if refused:
        return SendResult(False, None, refused)
    body = encode(payload)
    headers = signed_headers(secret=secret, message_id=message_id, body=body)
    timeout = httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return SendResult(False, None, "The endpoint did not answer in time.")
    except httpx.HTTPError as error:
        return SendResult(False, None, f"Could not connect: {error}"[:500])
    if 200 <= response.status_code < 300:
        return SendResult(True, response.status_code, "")
    snippet = " ".join(response.text[:200].split())
    error = f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")
    return SendResult(False, response.status_code, error[:500])
