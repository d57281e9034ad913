"""Server-sent events for one response: replay after a cursor, then follow the live tail.

A plain ASGI response rather than Starlette's ``StreamingResponse`` because the tail has to wake
for three different reasons (next event due, response cancelled, client gone) and has to be
able to hang up abruptly to imitate a dropped stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .conn import ConnectionResetUnavailable, abort_connection

if TYPE_CHECKING:
    from .state import FakeResponse


class EventStream:
    """ASGI app streaming ``resp``'s events with ``seq > starting_after``."""

    def __init__(
        self,
        resp: FakeResponse,
        *,
        starting_after: int | None,
        obfuscate: bool,
        headers: list[tuple[bytes, bytes]],
        drop_after: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resp = resp
        self.first = 0 if starting_after is None else max(0, starting_after + 1)
        self.obfuscate = obfuscate
        self.headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *headers,
        ]
        self.drop_after = drop_after
        self.clock = clock
        self.status_code = 200

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        gone = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            dropped = await self._pump(scope, send, gone)
        finally:
            watcher.cancel()
        if not dropped and not gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, scope, send, gone: asyncio.Event) -> bool:
        resp = self.resp
        for sent, event in enumerate(resp.events()[self.first :]):
            if self.drop_after is not None and sent >= self.drop_after:
                try:
                    await abort_connection(scope)
                    return True
                except ConnectionResetUnavailable:
                    return False
            if not await self._wait_until_due(event.at, gone):
                return False
            frame = event.obfuscated if self.obfuscate and event.obfuscated else event.frame
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        return False

    async def _wait_until_due(self, due: float, gone: asyncio.Event) -> bool:
        """Sleep until ``due``; False when the response was cancelled first or the client left."""
        resp = self.resp
        while True:
            if gone.is_set():
                return False
            if resp.cancelled_at is not None and due > resp.cancelled_at:
                return False
            delay = due - self.clock()
            if delay <= 0:
                return True
            waiters = [
                asyncio.ensure_future(gone.wait()),
                asyncio.ensure_future(resp.changed().wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
