"""Background/sync lifecycle through the official SDK: statuses, outputs, cancel, retention."""

from __future__ import annotations

import json
import time

import openai
import pytest
from fake_openai_helpers import HTTP, fast, wait_terminal

INPUT = "Steward keeps long running AI work durable, reviewable and cheap to retry."


def test_background_create_then_poll_to_completed(client, server):
    raw = client.responses.with_raw_response.create(
        model="gpt-4o-mini",
        input=INPUT,
        background=True,
        store=True,
        metadata=fast(job_id="job-1"),
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["content-type"] == "application/json"
    assert "x-ratelimit-remaining-requests" in raw.headers
    first = json.loads(raw.content)
    assert first["status"] == "queued"
    assert first["output"] == [] and "usage" not in first and first["completed_at"] is None
    assert first["id"].startswith("resp_") and first["background"] is True

    done = wait_terminal(client, first["id"])
    assert done.status == "completed"
    assert done.model == "gpt-4o-mini"
    assert done.metadata["job_id"] == "job-1"
    assert done.completed_at is not None and done.completed_at >= done.created_at
    assert done.output[0].id.startswith("msg_")
    assert done.output_text.startswith("Summary [")
    usage = done.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens == -(-len(INPUT) // 4)
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert done._request_id.startswith("req_")
    counts = server.stats()["responses"][first["id"]]
    assert counts["create"] == 1 and counts["retrieve"] >= 1


def test_status_progresses_queued_in_progress_completed(client):
    meta = {"fake_duration": "1.0", "fake_queued_for": "0.3"}
    resp = client.responses.create(model="m", input="x", background=True, metadata=meta)
    seen = [resp.status]
    while seen[-1] != "completed":
        time.sleep(0.03)
        status = client.responses.retrieve(resp.id).status
        if status != seen[-1]:
            seen.append(status)
    assert seen == ["queued", "in_progress", "completed"]


def test_output_is_deterministic_and_sized(client):
    meta = fast(fake_output_chars="333")
    ids = [
        client.responses.create(model="m", input=INPUT, background=True, metadata=meta).id
        for _ in range(2)
    ]
    texts = [wait_terminal(client, i).output_text for i in ids]
    assert texts[0] == texts[1] and len(texts[0]) == 333
    other = client.responses.create(
        model="m", input="something else", background=True, metadata=meta
    )
    assert wait_terminal(client, other.id).output_text != texts[0]


def test_failed_outcome_carries_error(client):
    resp = client.responses.create(
        model="m", input=INPUT, background=True, metadata=fast(fake_outcome="failed:invalid_prompt")
    )
    done = wait_terminal(client, resp.id)
    assert done.status == "failed"
    assert done.error.code == "invalid_prompt" and done.error.message
    assert done.completed_at is None and done.output == []


@pytest.mark.parametrize("reason", ["max_output_tokens", "content_filter"])
def test_incomplete_outcome_keeps_partial_output(client, reason):
    full = client.responses.create(model="m", input=INPUT, background=True, metadata=fast())
    part = client.responses.create(
        model="m", input=INPUT, background=True, metadata=fast(fake_outcome=f"incomplete:{reason}")
    )
    full_text = wait_terminal(client, full.id).output_text
    done = wait_terminal(client, part.id)
    assert done.status == "incomplete"
    assert done.incomplete_details.reason == reason
    assert done.completed_at is None
    assert 0 < len(done.output_text) < len(full_text)
    assert full_text.startswith(done.output_text)
    assert done.output[0].status == "incomplete"


def test_max_output_tokens_makes_long_output_incomplete(client):
    resp = client.responses.create(
        model="m",
        input=INPUT,
        background=True,
        max_output_tokens=20,
        metadata=fast(fake_output_chars="400"),
    )
    done = wait_terminal(client, resp.id)
    assert done.status == "incomplete" and done.incomplete_details.reason == "max_output_tokens"
    assert done.usage.output_tokens == 20 and len(done.output_text) == 80


def test_reasoning_model_reports_reasoning_tokens(client):
    resp = client.responses.create(model="o4-mini", input=INPUT, background=True, metadata=fast())
    usage = wait_terminal(client, resp.id).usage
    assert usage.output_tokens_details.reasoning_tokens > 0
    assert usage.output_tokens > usage.output_tokens_details.reasoning_tokens


def test_cancel_mid_run_is_idempotent(client):
    resp = client.responses.create(
        model="m", input=INPUT, background=True, metadata={"fake_duration": "5"}
    )
    first = client.responses.cancel(resp.id)
    assert first.status == "cancelled" and first.output == [] and first.usage is None
    again = client.responses.cancel(resp.id)
    assert again.model_dump() == first.model_dump()
    time.sleep(0.1)
    assert client.responses.retrieve(resp.id).status == "cancelled"


def test_cancel_terminal_returns_it_unchanged(client):
    resp = client.responses.create(model="m", input=INPUT, background=True, metadata=fast())
    done = wait_terminal(client, resp.id)
    assert client.responses.cancel(resp.id).model_dump() == done.model_dump()


def test_cancel_foreground_response_is_rejected(client):
    resp = client.responses.create(model="m", input=INPUT, metadata={"fake_duration": "0.05"})
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.cancel(resp.id)
    assert "background" in err.value.message


def test_sync_create_waits_for_the_final_response(client):
    started = time.monotonic()
    resp = client.responses.create(model="gpt-4o", input=INPUT, metadata=fast())
    assert time.monotonic() - started >= 0.19
    assert resp.status == "completed" and resp.background is False
    assert resp.output_text and resp.usage.total_tokens > 0


def test_not_found_after_retention(client, server):
    server.configure(retention_seconds=0.3)
    resp = client.responses.create(
        model="m", input=INPUT, background=True, metadata={"fake_duration": "0.1"}
    )
    assert wait_terminal(client, resp.id).status == "completed"
    time.sleep(0.45)
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve(resp.id)
    assert err.value.code == "not_found"
    assert err.value.request_id.startswith("req_")


def test_delete_then_not_found(client):
    resp = client.responses.create(model="m", input=INPUT, background=True, metadata=fast())
    client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_unknown_body_fields_tolerated_and_headers_logged(server):
    body = {
        "model": "m",
        "input": INPUT,
        "background": True,
        "background_options": {"completion_window": "soonest"},
        "metadata": fast(),
    }
    headers = {"Idempotency-Key": "idem-42", "x-stainless-retry-count": "2"}
    reply = HTTP.post(server.base_url + "/responses", json=body, headers=headers)
    assert reply.status_code == 200
    entry = server.log()[-1]
    assert entry["idempotency_key"] == "idem-42" and entry["retry_count"] == "2"
    assert entry["response_id"] == reply.json()["id"] and entry["status"] == 200
    assert entry["request_id"] == reply.headers["x-request-id"]


def test_stats_count_retrieves_per_response_and_job(client, server):
    meta = fast(job_id="job-42", fake_create_errors="503")
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="m", input=INPUT, background=True, metadata=meta)
    resp = client.responses.create(model="m", input=INPUT, background=True, metadata=meta)
    for _ in range(3):
        client.responses.retrieve(resp.id)
    stats = server.stats()
    assert stats["responses"][resp.id] == {"create": 1, "retrieve": 3}
    assert stats["jobs"]["job-42"] == {"create": 2, "retrieve": 3}
    assert stats["routes"]["retrieve"] == 3 and stats["responses_in_memory"] == 1
    assert stats["statuses"] == {"503": 1, "200": 4}
    assert [e["job_id"] for e in server.log()] == ["job-42"] * 5


def test_stats_can_give_when_each_response_was_created_and_when_it_ends(client, server):
    before = time.time()
    resp = client.responses.create(
        model="m", input=INPUT, background=True, metadata={"fake_duration": "2.5"}
    )
    timing = server.stats(timing=True)["timing"][resp.id]
    assert before <= timing["created"] <= time.time()
    assert timing["ends"] == pytest.approx(timing["created"] + 2.5)
    assert "timing" not in server.stats()


def test_store_false_response_is_not_retrievable(client):
    resp = client.responses.create(model="m", input=INPUT, store=False, metadata=fast())
    assert resp.status == "completed" and resp.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)
