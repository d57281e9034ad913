"""Abrupt connection resets, which ASGI itself cannot express.

ASGI lets an app answer or fail, but not hang up. To imitate a dropped connection (the ``reset``
fault, ``fake_stream_drop_after``) the fake needs the socket's transport, so ``__main__`` runs
uvicorn with a protocol subclass that records each connection's transport under the client
address, which is also what ASGI puts in ``scope["client"]``.
"""

from __future__ import annotations

import asyncio

_transports: dict[tuple[str, int], asyncio.BaseTransport] = {}


def _key(peer) -> tuple[str, int] | None:
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        return (str(peer[0]), int(peer[1]))
    return None


def tracking_protocol(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """Subclass a uvicorn HTTP protocol so that its transports can be found by client address."""

    class TrackingProtocol(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport):
            self._fake_key = _key(transport.get_extra_info("peername"))
            if self._fake_key is not None:
                _transports[self._fake_key] = transport
            super().connection_made(transport)

        def connection_lost(self, exc):
            if getattr(self, "_fake_key", None) is not None:
                _transports.pop(self._fake_key, None)
            super().connection_lost(exc)

    TrackingProtocol.__name__ = f"Tracking{base.__name__}"
    return TrackingProtocol


class ConnectionResetUnavailable(RuntimeError):
    """Raised when the app is served without the tracking protocol (e.g. in-process tests)."""


async def abort_connection(scope) -> None:
    """Reset the client's TCP connection and wait until the server has noticed."""
    key = _key(scope.get("client"))
    transport = _transports.get(key) if key else None
    if transport is None:
        raise ConnectionResetUnavailable("no transport for this connection")
    transport.abort()
    for _ in range(100):
        if key not in _transports:
            return
        await asyncio.sleep(0.001)
