"""Who may call the API: bearer tokens, browser sessions, and clear 401s for everyone else."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.services import revoke_api_token
from tests.api.conftest import bearer

PROBLEM = "application/problem+json"


def assert_unauthorized(response):
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    body = response.json()
    assert body["status"] == 401 and body["type"].startswith("urn:steward:problem:")
    return body


def test_anonymous_request_is_401_with_a_bearer_challenge(db):
    body = assert_unauthorized(Client().get("/api/v1/jobs"))
    assert body["detail"] == "Authentication credentials were not provided."


def test_unknown_token_is_401(db):
    client = Client(headers={"Authorization": "Bearer stw_not-a-real-token"})
    body = assert_unauthorized(client.get("/api/v1/jobs"))
    assert "not valid or has been revoked" in body["detail"]


def test_revoked_token_is_401(member):
    client = bearer(member)
    assert client.get("/api/v1/jobs").status_code == 200
    revoke_api_token(token=client.token)
    assert_unauthorized(client.get("/api/v1/jobs"))


def test_token_of_a_deactivated_user_is_401(member):
    client = bearer(member)
    member.is_active = False
    member.save()
    assert_unauthorized(client.get("/api/v1/jobs"))


@pytest.mark.parametrize("header", ["Bearer", "Bearer two words", "Bearer caf\u00e9"])
def test_malformed_bearer_header_is_401(db, header):
    client = Client(headers={"Authorization": header.encode().decode("latin-1")})
    assert_unauthorized(client.get("/api/v1/jobs"))


def test_token_use_is_recorded_at_most_once_a_minute(member):
    client = bearer(member)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get("/api/v1/jobs")
    client.token.refresh_from_db()
    assert client.token.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/v1/jobs")
    client.token.refresh_from_db()
    assert client.token.last_used_at == start
    with time_machine.travel(start + timedelta(minutes=2), tick=False):
        client.get("/api/v1/jobs")
    client.token.refresh_from_db()
    assert client.token.last_used_at == start + timedelta(minutes=2)


def test_browser_session_works_for_reads(member):
    client = Client()
    client.force_login(member)
    assert client.get("/api/v1/jobs").status_code == 200


def test_browser_session_writes_need_the_csrf_token(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post(
        "/api/v1/jobs",
        {"job_type": "summarize_document", "input": {"title": "T", "document": "D"}},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert "CSRF" in response.json()["detail"]
