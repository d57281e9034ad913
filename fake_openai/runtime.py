"""The one object holding a running fake's state: config, responses, counters and the log.

Kept apart from the routes so the control API, the scheduler and the ``/v1`` handlers share it
without importing each other, and so ``/_fake/reset`` can put everything back in one call.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from .config import Chaos, Config
from .ids import IdFactory
from .state import Store
from .webhooks import Scheduler

LOG_SIZE = 2000
RATE_LIMIT_REQUESTS = 10_000
RATE_LIMIT_TOKENS = 30_000_000

logger = logging.getLogger("fake_openai")


@dataclass(slots=True)
class Ctx:
    """What one /v1 request learned along the way, for its headers and its log line."""

    request_id: str
    started: float
    route: str
    response_id: str | None = None
    job_id: str | None = None
    fault: str | None = None


class FakeState:
    def __init__(self, config: Config) -> None:
        self.startup_config = config.copy()
        self.config = config
        self.chaos = Chaos(config.seed)
        self.ids = IdFactory(config.seed)
        self.store = Store()
        self.scheduler = Scheduler(self)
        self.route_counts: Counter[str] = Counter()
        self.status_counts: Counter[str] = Counter()
        self.per_response: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.per_job: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.job_of: dict[str, str] = {}  # response id -> metadata["job_id"]
        self.log: deque[dict] = deque(maxlen=LOG_SIZE)
        self._window = (0, 0)  # (minute, requests in it) for x-ratelimit-remaining-*

    now = staticmethod(time.time)

    def reseed(self, seed) -> None:
        self.chaos.reseed(seed)
        self.ids.reseed(seed)

    def reset(self) -> None:
        self.config = self.startup_config.copy()
        self.reseed(self.config.seed)
        self.store.clear()
        self.scheduler.clear()
        self.route_counts.clear()
        self.status_counts.clear()
        self.per_response.clear()
        self.per_job.clear()
        self.job_of.clear()
        self.log.clear()
        self._window = (0, 0)

    def remaining_requests(self, now: float) -> int:
        minute = int(now // 60)
        current, count = self._window
        count = count + 1 if current == minute else 1
        self._window = (minute, count)
        return max(0, RATE_LIMIT_REQUESTS - count)

    def record(
        self, ctx: Ctx, method: str, path: str, status: int, raw_headers: list[tuple[bytes, bytes]]
    ) -> None:
        idempotency_key = retry_count = None
        for name, value in raw_headers:  # one pass over the raw ASGI headers, no Headers object
            if name == b"idempotency-key":
                idempotency_key = value.decode("latin-1")
            elif name == b"x-stainless-retry-count":
                retry_count = value.decode("latin-1")
        self.route_counts[ctx.route] += 1
        self.status_counts[str(status)] += 1
        if ctx.response_id:
            self.per_response[ctx.response_id][ctx.route] += 1
            if ctx.job_id is None:
                ctx.job_id = self.job_of.get(ctx.response_id)
        if ctx.job_id is not None:
            self.per_job[ctx.job_id][ctx.route] += 1
        self.log.append(
            {
                "time": ctx.started,
                "method": method,
                "path": path,
                "route": ctx.route,
                "status": status,
                "request_id": ctx.request_id,
                "response_id": ctx.response_id,
                "job_id": ctx.job_id,
                "idempotency_key": idempotency_key,
                "retry_count": retry_count,
                "fault": ctx.fault,
            }
        )

    def stats(self, with_responses: bool = True, with_timing: bool = False) -> dict:
        out = {
            "requests_total": sum(self.route_counts.values()),
            "routes": dict(self.route_counts),
            "statuses": dict(self.status_counts),
            "responses_in_memory": len(self.store.responses),
        }
        if with_responses:
            out["responses"] = {rid: dict(c) for rid, c in self.per_response.items()}
            out["jobs"] = {job: dict(c) for job, c in self.per_job.items()}
        if with_timing:
            # when each response still held was created and when it ends (or ended), in this
            # server's clock: a benchmark measures the time between one response's end and the
            # create of the next step from these
            out["timing"] = {
                rid: {"created": resp.created, "ends": resp.terminal_at()}
                for rid, resp in self.store.responses.items()
            }
        return out

    def log_error(self, message: str) -> None:
        logger.exception(message)
