"""Building replies: headers every /v1 answer carries, error bodies, and injected faults.

Headers are pre-encoded once; a retrieve then costs a list copy plus three small values. The
``/v1`` wrapper here is where request ids, fault injection, stats and the request log happen,
so the handlers only deal with responses.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .conn import ConnectionResetUnavailable, abort_connection
from .errors import ApiError, injected
from .runtime import RATE_LIMIT_REQUESTS, RATE_LIMIT_TOKENS, Ctx, FakeState

_STATIC_HEADERS = [
    (b"openai-version", b"2020-10-01"),
    (b"openai-organization", b"fake-org"),
    (b"x-ratelimit-limit-requests", str(RATE_LIMIT_REQUESTS).encode()),
    (b"x-ratelimit-limit-tokens", str(RATE_LIMIT_TOKENS).encode()),
    (b"x-ratelimit-reset-requests", b"6ms"),
    (b"x-ratelimit-reset-tokens", b"0s"),
    (b"x-ratelimit-remaining-tokens", str(RATE_LIMIT_TOKENS - 1000).encode()),
]
_JSON = (b"content-type", b"application/json")


class Reply(Response):
    """A Starlette response from ready bytes and pre-encoded headers (skips header parsing)."""

    def __init__(self, body: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = body
        self.status_code = status
        self.background = None
        self.raw_headers = [*headers, (b"content-length", str(len(body)).encode())]


def common_headers(fake: FakeState, ctx: Ctx, *, exhausted: bool = False) -> list:
    now = time.time()
    remaining = 0 if exhausted else fake.remaining_requests(now)
    return [
        (b"x-request-id", ctx.request_id.encode()),
        (b"openai-processing-ms", str(int((now - ctx.started) * 1000)).encode()),
        (b"x-ratelimit-remaining-requests", str(remaining).encode()),
        *_STATIC_HEADERS,
    ]


def json_reply(fake: FakeState, ctx: Ctx, body: bytes, status: int = 200) -> Reply:
    return Reply(body, status, [_JSON, *common_headers(fake, ctx)])


def error_reply(fake: FakeState, ctx: Ctx, err: ApiError) -> Reply:
    from .state import dumps

    headers = [_JSON, *common_headers(fake, ctx, exhausted=err.status == 429)]
    headers += [(k.encode(), v.encode()) for k, v in err.headers.items()]
    if ctx.fault is not None and fake.config.should_retry is not None:
        headers.append((b"x-should-retry", b"true" if fake.config.should_retry else b"false"))
    return Reply(dumps(err.body()), err.status, headers)


class Hangup(Exception):
    """The connection was reset on purpose; there is nothing to answer."""


async def token_reply(
    fake: FakeState, ctx: Ctx, request: Request, token: str, retry_after: float | None
) -> Reply:
    """Answer with an injected fault token: an HTTP status, ``insufficient_quota``,
    ``malformed`` (200 with broken JSON) or ``reset`` (hang up without a reply)."""
    ctx.fault = ctx.fault or token
    if token == "reset":
        try:
            await abort_connection(request.scope)
        except ConnectionResetUnavailable:
            pass
        else:
            raise Hangup()
        token = "500"
    if token == "malformed":
        return json_reply(fake, ctx, b'{"id": "resp_broken", "object": "respo')
    err = injected(
        token, retry_after=fake.config.retry_after if retry_after is None else retry_after
    )
    return error_reply(fake, ctx, err)


Handler = Callable[[Request, FakeState, Ctx], Awaitable[Response]]


def v1_route(route: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a /v1 handler with request ids, random faults, error rendering, stats and logging."""

    def decorate(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            fake: FakeState = request.app.state.fake
            ctx = Ctx(fake.ids.request(), time.time(), route)
            ctx.response_id = request.path_params.get("response_id")
            fault = fake.chaos.pick_fault(fake.config, route)
            status = 0
            try:
                if fault == "slow":
                    ctx.fault = fault
                    await asyncio.sleep(fake.config.slow_seconds)
                elif fault in ("429", "insufficient_quota", "500", "503", "reset"):
                    reply = await token_reply(fake, ctx, request, fault, None)
                    status = reply.status_code
                    return reply
                try:
                    reply = await handler(request, fake, ctx)
                except ApiError as err:
                    reply = error_reply(fake, ctx, err)
                if fault == "malformed" and isinstance(reply, Reply):
                    ctx.fault = fault
                    reply = Reply(reply.body[: len(reply.body) // 2], 200, reply.raw_headers[:-1])
                status = reply.status_code
                return reply
            except Hangup:
                status = 0
                return Response(status_code=204)  # never sent: the connection is gone
            finally:
                scope = request.scope
                fake.record(ctx, scope["method"], scope["path"], status, scope["headers"])

        return endpoint

    return decorate
