"""Idempotency-Key on POST /api/v1/jobs: a retried request never makes a second job."""

import threading

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Role
from accounts.services import create_api_token
from jobs.models import Job
from tests.api.conftest import bearer, post_json
from tests.factories import WorkspaceFactory, member_of

SUMMARY = {"job_type": "summarize_document", "input": {"title": "Q3", "document": "Numbers."}}


def submit(client, body=SUMMARY, key="order-42"):
    headers = {} if key is None else {"Idempotency-Key": key}
    return post_json(client, "/api/v1/jobs", body, **headers)


def test_same_key_and_body_replays_the_original_job(api):
    first = submit(api)
    again = submit(api)
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Job.objects.count() == 1
    assert Job.objects.get().events.count() == 1


def test_replay_returns_the_jobs_current_state(api):
    job_id = submit(api).json()["id"]
    post_json(api, f"/api/v1/jobs/{job_id}/cancel")
    again = submit(api)
    assert again["Idempotent-Replayed"] == "true" and again.json()["status"] == "canceled"


def test_same_key_with_a_different_body_is_422(api):
    submit(api)
    changed = {**SUMMARY, "input": {"title": "Q4", "document": "Other numbers."}}
    response = submit(api, changed)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:steward:problem:idempotency-key-reused"
    assert "for a different request" in body["detail"]
    assert submit(api, {**SUMMARY, "priority": "high"}).status_code == 422
    assert Job.objects.count() == 1


def test_without_a_key_every_request_is_a_new_job(api):
    submit(api, key=None)
    submit(api, key=None)
    assert Job.objects.count() == 2


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_key_outside_1_to_255_characters_is_400(api, key):
    response = submit(api, key=key)
    assert response.status_code == 400
    assert response.json()["errors"] == {"Idempotency-Key": ["Use a key of 1 to 255 characters."]}
    assert not Job.objects.exists()


def test_key_of_255_characters_is_accepted(api):
    assert submit(api, key="k" * 255).status_code == 201


def test_keys_are_scoped_per_workspace(member, workspace):
    other_workspace = WorkspaceFactory()
    stranger = member_of(other_workspace)
    mine, theirs = submit(bearer(member)), submit(bearer(stranger))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert mine.json()["id"] != theirs.json()["id"]
    assert {Job.objects.get(pk=r.json()["id"]).workspace for r in (mine, theirs)} == {
        workspace,
        other_workspace,
    }


def test_a_colleagues_key_never_returns_their_job(member, workspace):
    submit(bearer(member))
    colleague = member_of(workspace, Role.MEMBER)
    response = submit(bearer(colleague))
    assert response.status_code == 422
    assert "already used in this workspace" in response.json()["detail"]
    assert Job.objects.count() == 1


@pytest.mark.pg
@pytest.mark.django_db(transaction=True)
def test_one_hundred_concurrent_requests_with_one_key_make_one_job():
    """100 requests over 25 threads that start together (PostgreSQL allows ~100 connections
    for everyone, so not all 100 can hold one at the same instant)."""
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    _, secret = create_api_token(user=user, name="load")
    threads_count, per_thread = 25, 4
    barrier = threading.Barrier(threads_count)
    results, lock = [], threading.Lock()

    def worker():
        client = Client(headers={"Authorization": f"Bearer {secret}"})
        try:
            barrier.wait()
            for _ in range(per_thread):
                response = submit(client, key="same-key")
                with lock:
                    results.append(
                        (
                            response.status_code,
                            response.json()["id"],
                            "Idempotent-Replayed" in response,
                        )
                    )
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == 100
    assert {status for status, _, _ in results} == {201}
    assert len({job_id for _, job_id, _ in results}) == 1
    assert sum(not replayed for _, _, replayed in results) == 1
    assert Job.objects.filter(workspace=workspace).count() == 1
    assert Job.objects.get(workspace=workspace).events.count() == 1
