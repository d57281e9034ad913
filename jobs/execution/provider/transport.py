"""A lean HTTP/1.1 transport for the pump's SDK client, used when ``PROVIDER_HTTP=lean``.

The default wire is the SDK's maintained aiohttp client. Back to back at 10,000 jobs in flight
(bench/p1_inflight.py, 2026-12-05) this transport used 98 CPU s where the aiohttp client used
103, and both met the pump's targets: not enough to make hand-written code the default. It
stays as an option, bounded as described below, for installations that measure otherwise.

The pump retrieves hundreds of responses a second through one ``AsyncOpenAI`` client. With the
SDK's default transport (httpx's connection pool over httpcore) a retrieve cost ~1.3 ms of CPU,
about half of it in the pool's bookkeeping (every request walks every pooled connection and asks
the socket of each idle one whether it expired) and httpcore's h11 state machine. This transport
keeps the SDK and httpx unchanged above it (requests are built, retried, authenticated and
parsed by the SDK as always) and replaces only the wire: one asyncio stream per connection,
kept alive and reused last-in first-out (not after ``keep_alive`` seconds idle, nor once the
server hung up), the request written in one piece and the answer read by ``Content-Length``
or chunked framing. Measured in-process against the fake, 500 retrieves 16 at a time
(bench/retrieve_cpu.py, 2026-12-04): 1.60 ms of CPU per retrieve, against 1.88 ms for the
aiohttp client and 3.08 ms for the SDK's default.

What it reads is bounded: at most ``MAX_HEADERS`` header lines of at most 64 KiB each, and a
body of at most ``MAX_BODY_BYTES`` whatever its framing; a larger answer fails the request as a
read error instead of growing the worker's memory.

What it does not do, by design: HTTP/2, ``Expect: 100-continue``, response streaming (the
client that streams Server-Sent Events is the SDK's default one, see ``client.py``), proxies
(httpx routes proxied URLs through its own transports when ``HTTPS_PROXY`` and friends are
set). Errors are raised as httpx's exceptions, so the SDK classifies them as it would its own
transport's: connect and read timeouts become ``APITimeoutError``, the rest
``APIConnectionError``. A GET whose reused connection turns out to be closed by the server
before any answer is sent again once on a new connection; other methods are not (a create
must never be sent twice without the caller knowing).
"""

import asyncio
import time

import httpx2 as httpx

NO_BODY = {204, 304}
# What one answer may hold. A retrieve of a finished response carries its whole output; the
# largest the API returns (128k output tokens with reasoning summaries and usage) is a few MB
# of JSON, so 64 MiB leaves room while a broken or hostile server cannot make a worker hold
# more. Header lines are bounded by the stream's own limit (64 KiB, asyncio's default).
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_HEADERS = 128


class LeanTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, max_idle=64, keep_alive=4.0, verify=True):
        self._idle: dict[tuple, list] = {}
        self._max_idle, self._keep_alive = max_idle, keep_alive
        self._verify = verify
        self._tls = None

    # --- connections ---------------------------------------------------------------------

    def _tls_context(self):
        """The TLS context httpx itself would build (its CA bundle, ``SSL_CERT_FILE``…)."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context(verify=self._verify)
        return self._tls

    async def _connect(self, scheme, host, port, timeout, request):
        tls = {"ssl": self._tls_context(), "server_hostname": host} if scheme == "https" else {}
        try:
            return await asyncio.wait_for(asyncio.open_connection(host, port, **tls), timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout("connecting timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or "could not connect", request=request) from exc

    async def _reuse(self, key):
        """A kept connection that is still open, or None. Servers hang up idle connections
        (uvicorn after 5 s), and the pump's event loop runs only while a batch is out, so a
        hang-up may not have been read yet: one turn of the loop reads it first, and a
        connection idle longer than ``keep_alive`` is not trusted at all."""
        idle = self._idle.get(key)
        if not idle:
            return None
        await asyncio.sleep(0)
        now = time.monotonic()
        while idle:
            reader, writer, since = idle.pop()
            if now - since < self._keep_alive and not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    def _keep(self, key, connection):
        idle = self._idle.setdefault(key, [])
        if len(idle) < self._max_idle:
            idle.append((*connection, time.monotonic()))
        else:
            connection[1].close()

    # --- one exchange ----------------------------------------------------------------------

    async def handle_async_request(self, request):
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        payload = self._encode(request, await request.aread())
        reused = await self._reuse(key)
        connection = reused or await self._connect(
            url.scheme, url.host, port, timeouts.get("connect"), request
        )
        try:
            status, headers, content, keep = await self._exchange(
                connection, payload, request, timeouts
            )
        except _ClosedBeforeAnswer:
            if not (reused and request.method in ("GET", "HEAD")):
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without an answer", request=request
                ) from None
            connection = await self._connect(
                url.scheme, url.host, port, timeouts.get("connect"), request
            )
            status, headers, content, keep = await self._exchange(
                connection, payload, request, timeouts
            )
        if keep:
            self._keep(key, connection)
        else:
            connection[1].close()
        return httpx.Response(status, headers=headers, content=content, request=request)

    @staticmethod
    def _encode(request, body):
        url = request.url
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        lines += [name + b": " + value + b"\r\n" for name, value in request.headers.raw]
        return b"".join(lines) + b"\r\n" + body

    async def _exchange(self, connection, payload, request, timeouts):
        reader, writer = connection
        try:
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), timeouts.get("write"))
            return await asyncio.wait_for(
                self._read_answer(reader, request.method), timeouts.get("read")
            )
        except _ClosedBeforeAnswer:
            writer.close()
            raise
        except TimeoutError as exc:
            writer.close()
            raise httpx.ReadTimeout("reading the answer timed out", request=request) from exc
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            writer.close()
            raise httpx.ReadError(str(exc) or "the connection broke", request=request) from exc
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            writer.close()
            raise

    @staticmethod
    async def _read_answer(reader, method):
        line = await reader.readline()
        if not line:
            raise _ClosedBeforeAnswer
        version, status = line.split(None, 2)[:2]
        status = int(status)
        keep = version == b"HTTP/1.1"
        headers, length, chunked = [], None, False
        while (line := await reader.readline()) not in (b"\r\n", b"\n"):
            if not line:
                raise ValueError("the answer ended inside its headers")
            if len(headers) >= MAX_HEADERS:
                raise ValueError(f"the answer has more than {MAX_HEADERS} headers")
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            lower = name.lower()
            if lower == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
                continue  # the body handed on is whole
            if lower == b"content-length":
                length = _within_limit(int(value))
            elif lower == b"connection":
                keep = b"close" not in value.lower() and (keep or b"keep-alive" in value.lower())
            headers.append((name, value))
        if method == "HEAD" or status in NO_BODY or status < 200:
            return status, headers, b"", keep
        if chunked:
            parts, total = [], 0
            while size := _chunk_size(await reader.readline()):
                total = _within_limit(total + size)
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return status, headers, b"".join(parts), keep
        if length is not None:
            return status, headers, await reader.readexactly(length), keep
        body = await reader.read(MAX_BODY_BYTES + 1)  # until the server closes
        _within_limit(len(body))
        return status, headers, body, False

    async def aclose(self):
        for idle in self._idle.values():
            for _, writer, _ in idle:
                writer.close()
        self._idle.clear()


def _within_limit(size):
    if size > MAX_BODY_BYTES:
        raise ValueError(f"the answer is larger than {MAX_BODY_BYTES} bytes")
    return size


def _chunk_size(line):
    if not line:
        raise ValueError("the answer ended inside its chunked body")
    return int(line.split(b";")[0].strip(), 16)


class _ClosedBeforeAnswer(Exception):
    """The server closed the connection before sending a byte of its answer."""
