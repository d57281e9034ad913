"""``python -m fake_openai --port N``: run the fake in one uvicorn process.

The socket is bound here (``--port 0`` picks a free one) and the real address is printed as
``FAKE_OPENAI_READY http://host:port`` once the server accepts connections, so a parent process
can start it without racing for ports. Access logs are off: under load they would cost more
than the requests themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

import uvicorn

from .app import create_app
from .config import Config, ConfigError
from .conn import tracking_protocol


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fake_openai", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", default=None, help="seed for ids, faults and webhook quirks")
    parser.add_argument("--retention-seconds", type=float, default=600.0)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("FAKE_OPENAI_WEBHOOK_SECRET"),
        help="whsec_<base64> (or FAKE_OPENAI_WEBHOOK_SECRET, which other users' ps cannot read)",
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def _protocol_class() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # httptools not installed: the pure-Python parser works, slower
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    return tracking_protocol(base)


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = Config()
    try:
        config.update(
            {
                "seed": args.seed,
                "retention_seconds": args.retention_seconds,
                "webhook_url": args.webhook_url,
                "webhook_secret": args.webhook_secret,
            }
        )
    except ConfigError as exc:
        print(f"fake_openai: {exc}", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    host, port = sock.getsockname()[:2]
    uv_config = uvicorn.Config(
        create_app(config),
        http=_protocol_class(),
        loop=_loop(),
        lifespan="on",
        access_log=False,
        log_level=args.log_level,
        server_header=False,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=1,
        proxy_headers=False,
    )
    server = uvicorn.Server(uv_config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            shown = f"[{host}]" if ":" in host else host
            print(f"FAKE_OPENAI_READY http://{shown}:{port}", flush=True)
        await task

    if uv_config.loop == "uvloop":
        import uvloop

        uvloop.run(serve())
    else:
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
