"""The limits every request meets before a view (``config.bodies``, ``config.failures``): bodies
too large for the ASGI server, text in forms that cannot be stored, and a web process with no
database connection free."""

import asyncio
import http.client
import json
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from psycopg_pool import PoolTimeout

from accounts.services import create_api_token
from config.asgi import application
from config.failures import failure_response
from jobs.models import Artifact
from tests.factories import JobFactory, member_of
from tests.processes import wait_for, web_server

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
    assert b"larger than" in body


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


def get(port, path, **headers):
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        client.request("GET", path, headers=headers)
        response = client.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        client.close()


def post(port, path, body=b"", **headers):
    headers.setdefault("Content-Type", "application/json")
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        client.request("POST", path, body=body, headers=headers)
        response = client.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        client.close()


@pytest.mark.pg
@pytest.mark.django_db(transaction=True)
def test_with_no_connection_free_requests_get_503_with_retry_after(workspace):
    """A web server whose one pooled connection is taken: a request waiting for a connection is
    answered 503 with Retry-After, problem details for the API and a short page elsewhere; the
    request that held the connection finishes normally."""
    user = member_of(workspace)
    _, token = create_api_token(user=user, name="pool")
    browser = Client()
    browser.force_login(user)
    session = browser.cookies["sessionid"].value
    job = JobFactory(workspace=workspace, submitter=user)
    db = connection.settings_dict
    locker = psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        autocommit=False,
    )
    server_env = {"DATABASE_POOL_SIZE": 1, "DATABASE_POOL_TIMEOUT": 1}
    with web_server(db["USER"], **server_env) as port, ThreadPoolExecutor(1) as holder:
        # the pool's one connection opened, so the cancel below does not wait for it
        assert get(port, "/api/v1/jobs", Authorization=f"Bearer {token}")[0] == 200
        # The job's row is locked, so a cancel holds the server's only connection while it
        # waits for the row.
        try:
            locker.execute("SELECT 1 FROM jobs_job WHERE id = %s FOR UPDATE", [job.pk])
            held = holder.submit(
                post, port, f"/api/v1/jobs/{job.pk}/cancel", Authorization=f"Bearer {token}"
            )

            def waiting_for_the_row():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND wait_event_type = 'Lock' AND query LIKE %s",
                        [db["NAME"], "%jobs_job%"],
                    )
                    return cursor.fetchone()[0] > 0

            wait_for(waiting_for_the_row, timeout=30, message="the cancel to wait for the row")
            api = get(port, "/api/v1/jobs", Authorization=f"Bearer {token}")
            page = get(port, "/review/", Cookie=f"sessionid={session}")
        finally:
            locker.rollback()
            locker.close()
        cancel_status = held.result(timeout=60)[0]

    status, headers, body = api
    assert status == 503
    assert headers["content-type"] == PROBLEM
    assert int(headers["retry-after"]) > 0
    assert "try again" in json.loads(body)["detail"]
    status, headers, body = page
    assert status == 503
    assert int(headers["retry-after"]) > 0
    assert b"busy" in body
    assert cancel_status == 200


@pytest.mark.pg
@pytest.mark.django_db(transaction=True)
def test_a_sync_job_waiting_for_the_provider_leaves_the_pool_to_other_requests(fake, workspace):
    """A sync-lane job runs inside its request for up to SYNC_LANE_TIMEOUT; while it waits for
    the provider it holds no database connection, so other requests of the same web process
    are served even by a one-connection pool."""
    from jobs.models import Attempt

    _, token = create_api_token(user=member_of(workspace), name="sync")
    auth = f"Bearer {token}"
    env = {
        "DATABASE_POOL_SIZE": 1,
        "DATABASE_POOL_TIMEOUT": 1,
        "OPENAI_BASE_URL": fake.base_url,
        "SYNC_LANE_TIMEOUT": 60,
    }
    body = {"job_type": "tag_ticket", "input": {"subject": "Login", "body": "[fake:duration=8]"}}
    with web_server(connection.settings_dict["USER"], **env) as port, ThreadPoolExecutor(1) as bg:
        sync = bg.submit(post_json, port, "/api/v1/jobs", body, Authorization=auth)
        wait_for(
            lambda: Attempt.objects.filter(job__job_type="tag_ticket").exists(),
            timeout=30,
            message="the sync job to call the provider",
        )
        other = get(port, "/api/v1/jobs", Authorization=auth)
        still_waiting = not sync.done()
        status = sync.result(timeout=60)[0]
    assert still_waiting, "the provider answered before the other request: nothing was shown"
    assert other[0] == 200
    assert status == 201


def post_json(port, path, body, **headers):
    return post(port, path, body=json.dumps(body).encode(), **headers)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (OperationalError("database is locked"), False),
        (OperationalError("deadlock detected"), False),
        (OperationalError("couldn't get a connection after 10.00 sec"), None),  # PoolTimeout
        (OperationalError("connection failed: FATAL: too many connections"), None),
    ],
)
def test_only_a_connection_that_could_not_be_had_is_503(error, unavailable):
    """503 says "nothing was changed, try again": true only when no connection was had. Any
    other database error (a deadlock after a commit, say) is a bug: a 500 with its traceback."""
    if unavailable is None:  # raised the way Django raises them: over the driver's error
        cause = (
            PoolTimeout(str(error))
            if "couldn't" in str(error)
            else psycopg.OperationalError(str(error))
        )
        error.__cause__ = cause
        unavailable = True
    request = RequestFactory().get("/api/v1/jobs")
    response = failure_response(request, error)
    assert (response is not None and response.status_code == 503) == unavailable
