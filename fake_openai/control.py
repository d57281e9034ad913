"""The ``/_fake/*`` control API that tests and benchmarks use to steer and observe the fake.

Nothing here exists on the real API; it is how a test turns on faults, resets state between
cases and counts requests per response (e.g. how many polls a job needed).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .config import ConfigError


def _fake(request: Request):
    return request.app.state.fake


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object")
    return data


async def _apply(fake, changes: dict) -> None:
    fake.config.update(changes)
    if "seed" in changes:
        fake.reseed(fake.config.seed)


async def config(request: Request) -> JSONResponse:
    """GET: current config. POST: partial update, e.g. ``{"faults": {"429": 0.1}}``."""
    fake = _fake(request)
    if request.method == "POST":
        try:
            await _apply(fake, await _body(request))
        except (ConfigError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(fake.config.as_dict())


async def reset(request: Request) -> JSONResponse:
    """Forget every response, counter and log line; restore the startup config (then apply
    any config given in the body)."""
    fake = _fake(request)
    fake.reset()
    try:
        await _apply(fake, await _body(request))
    except (ConfigError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True, "config": fake.config.as_dict()})


async def stats(request: Request) -> JSONResponse:
    """Request counts per route, per HTTP status and per response id (``?responses=0`` to
    skip the per-response table; ``?timing=1`` adds each held response's created and end
    times)."""
    with_responses = request.query_params.get("responses", "1") not in ("0", "false")
    with_timing = request.query_params.get("timing", "0") in ("1", "true")
    return JSONResponse(_fake(request).stats(with_responses, with_timing))


async def log(request: Request) -> JSONResponse:
    """The most recent /v1 requests, oldest first (``?limit=N``)."""
    limit = int(request.query_params.get("limit", "200"))
    entries = list(_fake(request).log)[-limit:] if limit > 0 else []
    return JSONResponse({"data": entries})


async def webhooks(request: Request) -> JSONResponse:
    """Every webhook delivery attempt and its outcome, oldest first."""
    return JSONResponse({"data": list(_fake(request).scheduler.deliveries)})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


routes = [
    Route("/_fake/config", config, methods=["GET", "POST"]),
    Route("/_fake/reset", reset, methods=["POST"]),
    Route("/_fake/stats", stats, methods=["GET"]),
    Route("/_fake/log", log, methods=["GET"]),
    Route("/_fake/webhooks", webhooks, methods=["GET"]),
    Route("/_fake/health", health, methods=["GET"]),
]
