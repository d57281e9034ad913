"""A job's timeline over the API: cursor pages and the Server-Sent Events stream, resumable
without gaps or duplicates."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from accounts.models import Role
from accounts.services import create_api_token, revoke_api_token
from jobs import services
from jobs.models import Status
from tests.api.conftest import bearer
from tests.factories import JobFactory, WorkspaceFactory, member_of


def job_with_events(workspace, submitter, count, *, status=Status.COMPLETED):
    job = JobFactory(workspace=workspace, submitter=submitter, status=status)
    for number in range(count):
        services.record_event(job, "note", actor="system:test", message=f"event {number}")
    return job


# --- cursor pages ---------------------------------------------------------------------------


def test_pages_follow_the_cursor_without_gaps_or_duplicates(api, member, workspace):
    job = job_with_events(workspace, member, 8)
    expected = list(job.events.order_by("id").values_list("id", flat=True))
    seen, after, pages = [], 0, 0
    while True:
        body = api.get(f"/api/v1/jobs/{job.pk}/events", {"after": after, "limit": 3}).json()
        seen += [event["id"] for event in body["results"]]
        after, pages = body["next_cursor"], pages + 1
        if not body["has_more"]:
            break
    assert seen == expected and pages == 3
    services.record_event(job, "note", actor="system:test", message="late")
    body = api.get(f"/api/v1/jobs/{job.pk}/events", {"after": after}).json()
    assert [event["message"] for event in body["results"]] == ["late"]
    empty = api.get(f"/api/v1/jobs/{job.pk}/events", {"after": body["next_cursor"]}).json()
    assert empty == {"results": [], "next_cursor": body["next_cursor"], "has_more": False}


def test_events_carry_the_audit_fields(api, member, workspace):
    job = JobFactory(workspace=workspace, submitter=member)
    services.cancel_job(job=job, actor=member, reason="Not needed any more.")
    (event,) = api.get(f"/api/v1/jobs/{job.pk}/events").json()["results"]
    assert event["kind"] == "canceled" and event["actor"] == member.username
    assert (event["from_status"], event["to_status"]) == ("queued", "canceled")
    assert event["message"] == "Not needed any more."


@pytest.mark.parametrize("query", [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": 501}])
def test_bad_cursor_or_limit_is_400(api, member, workspace, query):
    job = job_with_events(workspace, member, 1)
    response = api.get(f"/api/v1/jobs/{job.pk}/events", query)
    assert response.status_code == 400 and set(response.json()["errors"]) == set(query)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("member", 200),
        ("reviewer", 404),
        ("admin", 200),
        ("outsider", 404),
        ("anonymous", 401),
        ("revoked", 401),
    ],
)
def test_events_by_role(member, reviewer, admin, outsider, workspace, role, expected):
    from tests.api.test_jobs import client_for

    job = job_with_events(workspace, member, 2)
    client = client_for(role, member=member, reviewer=reviewer, admin=admin, outsider=outsider)
    assert client.get(f"/api/v1/jobs/{job.pk}/events").status_code == expected


# --- Server-Sent Events ---------------------------------------------------------------------
# The stream reads the database from another thread, so these tests commit their rows.

stream_db = pytest.mark.django_db(transaction=True)


def read_stream(path, secret=None, **headers):
    """GET ``path`` through the ASGI handler; returns (status, headers, body text)."""
    if secret:
        headers["Authorization"] = f"Bearer {secret}"

    async def go():
        response = await AsyncClient().get(path, headers=headers)
        if not response.streaming:
            return response.status_code, response, response.content.decode()
        chunks = [chunk async for chunk in response]
        return response.status_code, response, b"".join(chunks).decode()

    return async_to_sync(go)()


def parse_sse(text):
    messages = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            messages.append(
                (fields["event"], int(fields["id"]), json.loads(fields.get("data", "null")))
            )
    return messages


@pytest.fixture
def streaming(db):
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    _, secret = create_api_token(user=user, name="stream")
    return workspace, user, secret


@stream_db
def test_stream_sends_every_event_then_ends_for_a_finished_job(streaming):
    workspace, user, secret = streaming
    job = job_with_events(workspace, user, 4)
    status, response, text = read_stream(f"/api/v1/jobs/{job.pk}/events/stream", secret)
    assert status == 200 and response["Content-Type"] == "text/event-stream"
    messages = parse_sse(text)
    ids = list(job.events.order_by("id").values_list("id", flat=True))
    assert [m[1] for m in messages if m[0] == "job_event"] == ids
    assert messages[-1][0] == "end" and messages[-1][2] == {"status": "completed"}
    page = bearer(user).get(f"/api/v1/jobs/{job.pk}/events").json()["results"]
    assert [m[2] for m in messages if m[0] == "job_event"] == page


@stream_db
@pytest.mark.parametrize("how", ["header", "query"])
def test_stream_resumes_after_the_last_event_id(streaming, how):
    workspace, user, secret = streaming
    job = job_with_events(workspace, user, 6)
    ids = list(job.events.order_by("id").values_list("id", flat=True))
    path = f"/api/v1/jobs/{job.pk}/events/stream"
    if how == "header":
        _, _, text = read_stream(path, secret, **{"Last-Event-ID": str(ids[2])})
    else:
        _, _, text = read_stream(f"{path}?after={ids[2]}", secret)
    resumed = [m[1] for m in parse_sse(text) if m[0] == "job_event"]
    assert ids[:3] + resumed == ids


@stream_db
def test_stream_of_a_running_job_closes_after_its_time_budget(streaming, settings):
    settings.API_EVENT_STREAM_MAX_SECONDS = 0
    workspace, user, secret = streaming
    job = job_with_events(workspace, user, 2, status=Status.RUNNING)
    status, _, text = read_stream(f"/api/v1/jobs/{job.pk}/events/stream", secret)
    kinds = [m[0] for m in parse_sse(text)]
    assert status == 200 and kinds == ["job_event", "job_event"]  # no "end": resume later


@stream_db
def test_stream_rejects_a_bad_after(streaming):
    workspace, user, secret = streaming
    job = job_with_events(workspace, user, 1)
    status, response, text = read_stream(f"/api/v1/jobs/{job.pk}/events/stream?after=x", secret)
    assert status == 400 and json.loads(text)["errors"] == {
        "after": ["A valid integer is required."]
    }


@stream_db
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("member", 200),
        ("reviewer", 404),
        ("admin", 200),
        ("outsider", 404),
        ("anonymous", 401),
        ("revoked", 401),
    ],
)
def test_stream_by_role(streaming, role, expected):
    workspace, user, secret = streaming
    job = job_with_events(workspace, user, 1)
    if role == "member":
        use = secret
    elif role == "anonymous":
        use = None
    else:
        person = (
            member_of(WorkspaceFactory(), Role.ADMIN)
            if role == "outsider"
            else member_of(workspace, Role.ADMIN if role == "admin" else Role.REVIEWER)
        )
        if role == "revoked":
            person = user
        token, use = create_api_token(user=person, name=role)
        if role == "revoked":
            revoke_api_token(token=token)
    status, response, text = read_stream(
        f"/api/v1/jobs/{job.pk}/events/stream", use, Accept="text/event-stream"
    )
    assert status == expected
    if expected != 200:
        assert response["Content-Type"] == "application/problem+json"
        assert json.loads(text)["status"] == expected


@stream_db
def test_stream_works_with_the_browser_session(streaming):
    workspace, user, _ = streaming
    job = job_with_events(workspace, user, 2)
    client = AsyncClient()
    client.force_login(user)

    async def go():
        response = await client.get(f"/api/v1/jobs/{job.pk}/events/stream")
        return response.status_code, b"".join([chunk async for chunk in response]).decode()

    status, text = async_to_sync(go)()
    assert status == 200 and [m[0] for m in parse_sse(text)] == ["job_event", "job_event", "end"]
