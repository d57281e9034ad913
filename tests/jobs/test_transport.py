"""The pump client's lean HTTP/1.1 transport (jobs/execution/provider/transport.py) against
small real servers that frame their answers the ways HTTP allows, and the SDK over it against
the fake."""

import asyncio
import json
import threading

import httpx2 as httpx
import openai
import pytest

from jobs.execution.provider.transport import LeanTransport
from tests.processes import wait_for


class Server:
    """An HTTP/1.1 server on a free port that answers ``GET /length`` with a Content-Length
    body, ``GET /chunked`` with a chunked one, ``/drop`` by closing the connection without a
    word when it is not the connection's first request, ``/close`` with a body that ends when
    the server closes the connection, ``/headers`` with 200 headers, and ``/slow`` after 2 s."""

    def __init__(self, keep_alive=None):
        self.connections = 0
        self.hung_up = 0  # connections the server closed
        self.requests = []
        self.keep_alive = keep_alive  # seconds an idle connection is kept, as uvicorn's 5 s

    async def __aenter__(self):
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def serve(self, reader, writer):
        self.connections += 1
        served = 0
        try:
            while line := await asyncio.wait_for(reader.readline(), self.keep_alive):
                method, path, _ = line.decode().split(" ", 2)
                length = 0
                while (header := await reader.readline()) != b"\r\n":
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests.append((method, path, body))
                if path == "/drop" and served:
                    break
                if path == "/slow":
                    await asyncio.sleep(2)
                writer.write(self.answer(path, served))
                await writer.drain()
                served += 1
                if path == "/close":
                    break
        except TimeoutError:
            pass  # idle past its keep-alive: the server hangs up, as real ones do
        finally:
            writer.close()
            self.hung_up += 1

    @staticmethod
    def answer(path, served):
        body = json.dumps({"path": path, "served": served}).encode()
        if path == "/close":
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body
        if path == "/headers":
            many = b"".join(b"X-Filler-%d: x\r\n" % n for n in range(200))
            return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (many, len(body), body)
        if path == "/chunked":
            half = len(body) // 2
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:half], body[half:]))
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def client(**options):
    return httpx.AsyncClient(transport=LeanTransport(), **options)


def test_answers_framed_by_length_or_in_chunks_are_read_whole_over_one_kept_connection():
    async def scenario():
        async with Server() as server, client(base_url=server.url) as http:
            answers = [await http.get(path) for path in ("/length", "/chunked") * 3]
            return server.connections, [(a.status_code, a.json()) for a in answers]

    connections, answers = asyncio.run(scenario())
    assert connections == 1
    assert answers == [
        (200, {"path": path, "served": served})
        for served, path in enumerate(("/length", "/chunked") * 3)
    ]


@pytest.mark.parametrize("path", ["/length", "/chunked", "/close"])
def test_an_answer_larger_than_the_bound_fails_whatever_its_framing(monkeypatch, path):
    """A broken or hostile server cannot make a worker hold an unbounded answer."""
    monkeypatch.setattr("jobs.execution.provider.transport.MAX_BODY_BYTES", 16)

    async def scenario():
        async with Server() as server, client(base_url=server.url) as http:
            with pytest.raises(httpx.ReadError, match="larger than 16 bytes"):
                await http.get(path)

    asyncio.run(scenario())


def test_an_answer_with_too_many_headers_fails():
    async def scenario():
        async with Server() as server, client(base_url=server.url) as http:
            with pytest.raises(httpx.ReadError, match="more than 128 headers"):
                await http.get("/headers")

    asyncio.run(scenario())


def test_a_get_the_server_dropped_on_a_kept_connection_is_sent_again_on_a_new_one():
    async def scenario():
        async with Server() as server, client(base_url=server.url) as http:
            await http.get("/length")
            answer = await http.get("/drop")
            return server.connections, answer.json()

    connections, answer = asyncio.run(scenario())
    assert connections == 2
    assert answer == {"path": "/drop", "served": 0}


def test_a_post_the_server_dropped_is_not_sent_twice():
    async def scenario():
        async with Server() as server, client(base_url=server.url) as http:
            await http.get("/length")
            with pytest.raises(httpx.RemoteProtocolError):
                await http.post("/drop", content=b'{"create": 1}')
            return [request for request in server.requests if request[0] == "POST"]

    assert asyncio.run(scenario()) == [("POST", "/drop", b'{"create": 1}')]


def test_a_post_after_the_server_closed_the_idle_connection_goes_out_on_a_new_one():
    """Servers hang up idle kept-alive connections (uvicorn after 5 s). The pump's event loop
    runs only while a batch is out, so it has not yet seen the hang-up when the next batch
    starts: the next request, a create included, must not be written into the dead one."""
    started, stop = threading.Event(), threading.Event()
    box = {}

    def serve():
        async def main():
            async with Server(keep_alive=0.2) as server:
                box["server"] = server
                started.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(5)
    server, loop = box["server"], asyncio.new_event_loop()
    http = client(base_url=server.url)
    try:
        loop.run_until_complete(http.get("/length"))
        # the client's loop is not running while the server closes the connection
        wait_for(lambda: server.hung_up == 1, timeout=10, message="the server to hang up")
        answer = loop.run_until_complete(http.post("/length", content=b'{"create": 1}'))
    finally:
        loop.run_until_complete(http.aclose())
        loop.close()
        stop.set()
        thread.join(5)
    assert server.connections == 2 and answer.json() == {"path": "/length", "served": 0}


def test_a_connection_idle_past_the_keep_alive_is_not_reused():
    async def scenario():
        async with Server() as server:
            transport = LeanTransport(keep_alive=0.2)
            async with httpx.AsyncClient(transport=transport, base_url=server.url) as http:
                await http.get("/length")
                await http.get("/length")
                await asyncio.sleep(0.4)
                await http.get("/length")
            return server.connections

    assert asyncio.run(scenario()) == 2


def test_a_slow_answer_is_a_read_timeout_and_the_connection_is_not_reused():
    async def scenario():
        async with Server() as server, client(base_url=server.url, timeout=0.3) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/slow")
            answer = await http.get("/length")
            return server.connections, answer.json()

    connections, answer = asyncio.run(scenario())
    assert connections == 2 and answer["served"] == 0


def test_a_refused_connection_is_a_connect_error():
    async def scenario():
        async with Server() as server:
            url = server.url
        async with client() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(url + "/length")

    asyncio.run(scenario())


@pytest.mark.parametrize("wire", ["lean", "aiohttp", "httpx"])
def test_the_pump_client_creates_and_retrieves_at_the_fake_on_each_wire(fake, settings, wire):
    """``PROVIDER_HTTP`` chooses the pump's wire (bench/retrieve_cpu.py compares them)."""
    from jobs.execution.provider.client import async_client

    settings.PROVIDER_HTTP = wire

    async def scenario():
        sdk = async_client().with_options(max_retries=0)
        created = await sdk.responses.create(
            model="gpt-5-mini", input="Hello.", background=True, metadata={"fake_duration": "0"}
        )
        done = created
        for _ in range(200):  # the fake finishes a zero-second response at its next look
            done = await sdk.responses.retrieve(created.id)
            if done.status == "completed":
                break
            await asyncio.sleep(0.05)
        with pytest.raises(openai.NotFoundError):
            await sdk.responses.retrieve("resp_missing")
        await sdk.close()
        return created, done

    created, done = asyncio.run(scenario())
    assert created.status in ("queued", "in_progress", "completed")
    assert done.id == created.id and done.status == "completed" and done.output_text
