"""The limits every request meets before a view (``config.bodies``, ``config.failures``): bodies
too large for the ASGI server, text in forms that cannot be stored, and a web process with no
database connection free."""

import asyncio
import json
import threading

import pytest
from django.db import connection
from django.test import Client
from psycopg_pool import PoolTimeout

from config.asgi import application
from jobs.models import Artifact
from tests.api.conftest import bearer
from tests.factories import WorkspaceFactory, member_of

PROBLEM = "application/problem+json"


def asgi_post(path, chunks, *, content_length=None):
    """POST ``chunks`` to Steward's ASGI application; return (status, headers, body)."""
    headers = [(b"content-type", b"application/json"), (b"host", b"testserver")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": n < len(chunks) - 1}
        for n, chunk in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(settings):
    status, headers, body = asgi_post(
        "/api/v1/jobs", [], content_length=settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    )
    assert status == 413
    assert headers[b"content-type"] == PROBLEM.encode()
    assert json.loads(body)["status"] == 413


def test_a_chunked_body_is_cut_once_it_passes_the_limit(settings):
    chunk = b"x" * (1024 * 1024)
    chunks = [chunk] * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE // len(chunk) + 2)
    status, headers, _ = asgi_post("/webhooks/openai/", chunks)
    assert status == 413
    assert headers[b"content-type"] == PROBLEM.encode()


def test_a_page_gets_a_plain_413(settings):
    status, headers, body = asgi_post(
        "/review/", [], content_length=settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    )
    assert status == 413
    assert headers[b"content-type"].startswith(b"text/plain")
    assert b"too large" in body


# --- text in forms and query strings --------------------------------------------------------


@pytest.fixture
def reviewer_page(workspace):
    client = Client()
    client.force_login(member_of(workspace, "reviewer"))
    return client


def test_nul_in_a_console_edit_is_refused_and_the_draft_kept(reviewer_page, draft):
    assert reviewer_page.post(f"/review/{draft.pk}/claim/").status_code == 302
    response = reviewer_page.post(f"/review/{draft.pk}/edit/", {"text": "Hi\x00 Ada"})
    assert response.status_code == 400
    assert b"NUL" in response.content
    assert draft.artifacts.filter(kind=Artifact.Kind.TEXT).count() == 1


def test_nul_in_a_token_name_is_refused(workspace):
    client = Client()
    client.force_login(member_of(workspace))
    response = client.post("/settings/tokens/", {"name": "laptop\x00"})
    assert response.status_code == 400
    assert not client.session.get("new_token")


def test_nul_in_a_page_query_string_is_refused(reviewer_page):
    assert reviewer_page.get("/review/", {"job_type": "\x00"}).status_code == 400


# --- no database connection free ------------------------------------------------------------


@pytest.fixture
def exhausted_pool(transactional_db):
    """Takes every connection of the web process's pool, and shortens the wait for one."""

    def exhaust():
        pool = connection.pool
        pool.open()
        while True:
            try:
                taken.append(pool.getconn(timeout=0.5))
            except PoolTimeout:
                break
        pool.timeout = 0.2
        return pool

    if connection.pool is None:
        pytest.skip("no connection pool (DATABASE_POOL_SIZE=0)")
    taken, waited = [], connection.pool.timeout
    yield exhaust
    connection.pool.timeout = waited
    for held in taken:
        connection.pool.putconn(held)


def in_a_new_thread(call):
    """Run ``call`` where Django opens a connection of its own, as a request's thread does."""
    answer = []
    thread = threading.Thread(target=lambda: answer.append(call()))
    thread.start()
    thread.join(timeout=30)
    return answer[0]


@pytest.mark.pg
def test_an_api_request_with_no_connection_free_is_503_with_retry_after(exhausted_pool):
    client = bearer(member_of(WorkspaceFactory()))
    exhausted_pool()
    response = in_a_new_thread(lambda: client.get("/api/v1/jobs"))
    assert response.status_code == 503
    assert response["Content-Type"] == PROBLEM
    assert int(response["Retry-After"]) > 0
    assert "try again" in response.json()["detail"]


@pytest.mark.pg
def test_a_page_with_no_connection_free_is_503_with_retry_after(exhausted_pool):
    client = Client(raise_request_exception=False)  # as a server: the handler's answer
    client.force_login(member_of(WorkspaceFactory(), "reviewer"))
    exhausted_pool()
    response = in_a_new_thread(lambda: client.get("/review/"))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert b"busy" in response.content
