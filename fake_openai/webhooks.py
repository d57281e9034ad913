"""Webhook deliveries, driven by one scheduler task over a heap of due times.

Responses are lazy, so nothing "happens" when one finishes; instead every background response
puts its terminal time on a heap and this single task wakes when the earliest entry is due,
checks what the response really became, and posts the thin event
``{"id":"evt_…","object":"event","type":"response.<status>","created_at":…,"data":{"id":…}}``
signed the Standard Webhooks way, exactly as ``openai``'s ``client.webhooks.unwrap`` verifies.
Non-2xx replies are retried with exponential backoff under the same ``webhook-id``. The same
heap also drives the periodic retention sweep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import heapq
import hmac
import itertools
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .state import TERMINAL, dumps

if TYPE_CHECKING:
    from .app import FakeState

SWEEP_EVERY = 30.0
STALE_BY = 600  # seconds; unwrap's tolerance is 300


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}`` keyed like the SDK does."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    event_type: str
    response_id: str
    body: bytes
    copy: int = 0  # 1 for an injected duplicate


class Scheduler:
    """One task, one heap: terminal checks, delivery attempts and retention sweeps."""

    def __init__(self, fake: FakeState) -> None:
        self.fake = fake
        self._heap: list[tuple[float, int, str, Any]] = []
        self._order = itertools.count()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self._client = None
        self.deliveries: deque[dict] = deque(maxlen=2000)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="fake-openai-scheduler")
        self.push(time.time() + SWEEP_EVERY, "sweep", None)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        for task in list(self._inflight):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

    def clear(self) -> None:
        self._heap.clear()
        self.deliveries.clear()
        self.push(time.time() + SWEEP_EVERY, "sweep", None)

    def push(self, due: float, kind: str, payload: Any) -> None:
        order = next(self._order)
        heapq.heappush(self._heap, (due, order, kind, payload))
        if self._wake is not None and self._heap[0][1] == order:
            self._wake.set()  # the new entry is the earliest: the task must sleep less

    # --- scheduling --------------------------------------------------------------------------

    def response_created(self, resp) -> None:
        if resp.background:
            self.push(resp.end_at, "terminal", (resp.id, resp.end_at))

    def response_cancelled(self, resp) -> None:
        self.push(resp.cancelled_at, "terminal", (resp.id, resp.cancelled_at))

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                _, _, kind, payload = heapq.heappop(self._heap)
                try:
                    self._handle(kind, payload, now)
                except Exception:  # one bad entry must not stop every later delivery
                    self.fake.log_error("scheduler entry failed")
            timeout = self._heap[0][0] - now if self._heap else None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _handle(self, kind: str, payload: Any, now: float) -> None:
        if kind == "sweep":
            self.fake.store.sweep(now, self.fake.config.retention_seconds)
            self.push(now + SWEEP_EVERY, "sweep", None)
        elif kind == "terminal":
            self._terminal(*payload, now)
        elif kind == "deliver":
            delivery, attempt = payload
            task = asyncio.create_task(self._deliver(delivery, attempt))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _terminal(self, response_id: str, expected_at: float, now: float) -> None:
        resp = self.fake.store.responses.get(response_id)
        if resp is None or resp.terminal_at() != expected_at:
            return  # deleted, or cancelled before its natural end (a later entry covers it)
        status = resp.status_at(now)
        config = self.fake.config
        if status not in TERMINAL or not (config.webhook_url and config.webhook_secret):
            return
        event_id = self.fake.ids.event()
        event = {
            "id": event_id,
            "object": "event",
            "type": f"response.{status}",
            "created_at": int(expected_at),
            "data": {"id": resp.id},
        }
        delivery = Delivery(self.fake.ids.webhook(), event_id, event["type"], resp.id, dumps(event))
        chaos = self.fake.chaos
        if chaos.chance(config.webhook_drop_rate):
            self._record(delivery, 0, "dropped")
            return
        due = now + config.webhook_delay
        self.push(due, "deliver", (delivery, 1))
        if chaos.chance(config.webhook_duplicate_rate):
            twin = Delivery(**{**delivery.__dict__, "copy": 1})
            self.push(due + 0.05, "deliver", (twin, 1))

    # --- delivery ----------------------------------------------------------------------------

    async def _deliver(self, delivery: Delivery, attempt: int) -> None:
        config, chaos = self.fake.config, self.fake.chaos
        if not (config.webhook_url and config.webhook_secret):
            return
        timestamp = int(time.time())
        stale = chaos.chance(config.webhook_stale_timestamp)
        if stale:
            timestamp -= STALE_BY
        bad = chaos.chance(config.webhook_bad_signature)
        secret = "whsec_" + base64.b64encode(b"not-the-secret").decode() if bad else None
        headers = {
            "content-type": "application/json",
            "user-agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                secret or config.webhook_secret, delivery.webhook_id, timestamp, delivery.body
            ),
        }
        status: int | None = None
        try:
            status = (await self._post(config, headers, delivery.body)).status_code
            outcome = "delivered" if 200 <= status < 300 else "rejected"
        except Exception as exc:  # connection refused, timeout …: retried like a non-2xx
            outcome = f"error: {type(exc).__name__}"
        self._record(delivery, attempt, outcome, status=status, bad_signature=bad, stale=stale)
        if outcome != "delivered" and attempt < config.webhook_max_attempts:
            backoff = config.webhook_retry_base * 2 ** (attempt - 1)
            self.push(time.time() + backoff, "deliver", (delivery, attempt + 1))

    async def _post(self, config, headers: dict[str, str], body: bytes):
        if self._client is None:
            import httpx2 as httpx  # imported lazily: most runs never send a webhook

            self._client = httpx.AsyncClient()
        return await self._client.post(
            config.webhook_url, content=body, headers=headers, timeout=config.webhook_timeout
        )

    def _record(self, delivery: Delivery, attempt: int, outcome: str, **extra: Any) -> None:
        self.deliveries.append(
            {
                "time": time.time(),
                "webhook_id": delivery.webhook_id,
                "event_id": delivery.event_id,
                "type": delivery.event_type,
                "response_id": delivery.response_id,
                "attempt": attempt,
                "duplicate": bool(delivery.copy),
                "outcome": outcome,
                **extra,
            }
        )
