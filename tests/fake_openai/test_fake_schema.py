"""Every JSON body and stream event the fake emits validates against the reference spec."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from fake_openai_helpers import EVENT_SCHEMAS, HTTP, read_sse, wait_terminal

OUTCOMES = [
    "completed",
    "failed:server_error",
    "failed:invalid_prompt",
    "failed:rate_limit_exceeded",
    "failed:image_too_large",
    "incomplete:max_output_tokens",
    "incomplete:content_filter",
]
RICH_BODY = {
    "model": "o4-mini",
    "input": [
        {"role": "user", "content": "Summarise the attached notes."},
        {"role": "user", "content": [{"type": "input_text", "text": "Notes: ship on Friday."}]},
    ],
    "instructions": "Be brief.",
    "temperature": 0.2,
    "top_p": 0.9,
    "max_output_tokens": 800,
    "reasoning": {"effort": "low"},
    "text": {"format": {"type": "text"}},
    "tool_choice": "none",
    "service_tier": "auto",
    "user": "user-1",
    "prompt_cache_key": "steward-summaries",
    "store": True,
}


def _create(server, body: dict) -> httpx.Response:
    return HTTP.post(server.base_url + "/responses", json=body)


def _get(server, response_id: str) -> dict:
    return HTTP.get(f"{server.base_url}/responses/{response_id}").json()


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_response_bodies_validate_in_every_status(server, client, schemas, outcome):
    def create(duration: str, queued_for: str) -> dict:
        meta = {"fake_duration": duration, "fake_queued_for": queued_for, "fake_outcome": outcome}
        return _create(server, {**RICH_BODY, "background": True, "metadata": meta}).json()

    queued, running = create("30", "30"), create("30", "0")
    finishing = create("0.05", "0")
    assert queued["status"] == "queued" and running["status"] == "in_progress"
    for body in (queued, running, _get(server, running["id"])):
        schemas.check("Response", body)
        assert "usage" not in body and body["output"] == [] and body["completed_at"] is None
    wait_terminal(client, finishing["id"])
    final = _get(server, finishing["id"])
    schemas.check("Response", final)
    assert final["status"] == outcome.split(":")[0]
    assert final["usage"]["input_tokens_details"]["cache_write_tokens"] == 0
    assert (final["completed_at"] is not None) == (final["status"] == "completed")
    assert final["service_tier"] == "default" and final["instructions"] == "Be brief."


def test_cancelled_sync_and_deleted_bodies(server, schemas):
    long = _create(server, {**RICH_BODY, "background": True, "metadata": {"fake_duration": "9"}})
    cancelled = HTTP.post(f"{server.base_url}/responses/{long.json()['id']}/cancel").json()
    schemas.check("Response", cancelled)
    assert cancelled["status"] == "cancelled" and "usage" not in cancelled
    sync = _create(server, {**RICH_BODY, "metadata": {"fake_duration": "0.05"}}).json()
    schemas.check("Response", sync)
    assert sync["status"] == "completed" and sync["background"] is False
    deleted = HTTP.delete(f"{server.base_url}/responses/{sync['id']}").json()
    assert deleted == {"id": sync["id"], "object": "response.deleted", "deleted": True}


@pytest.mark.parametrize(
    "outcome", ["completed", "failed:server_error", "incomplete:content_filter"]
)
def test_every_stream_event_validates(server, schemas, outcome):
    meta = {"fake_duration": "0.2", "fake_output_chars": "90", "fake_outcome": outcome}
    body = {**RICH_BODY, "background": True, "stream": True, "metadata": meta}
    _, events = read_sse("POST", server.base_url + "/responses", json=body)
    assert events[-1][0] == "response." + outcome.split(":")[0]
    for name, data in events:
        schemas.check(EVENT_SCHEMAS[name], data)
        schemas.check("ResponseStreamEvent", data)


def test_error_bodies_validate(server, schemas):
    base = server.base_url + "/responses"
    replies = [
        HTTP.post(base, json={"input": "no model"}),
        HTTP.get(base + "/resp_missing"),
        HTTP.post(base + "/resp_missing/cancel"),
    ]
    for token in ("429", "insufficient_quota", "500", "503"):
        meta = {"job_id": f"schema-{token}", "fake_create_errors": token}
        replies.append(HTTP.post(base, json={"model": "m", "input": "x", "metadata": meta}))
    assert [r.status_code for r in replies] == [400, 404, 404, 429, 429, 500, 503]
    for reply in replies:
        schemas.check("ErrorResponse", reply.json())
        assert reply.headers["content-type"] == "application/json"


def test_validator_catches_broken_bodies(server, schemas):
    """Guards the guard: the checks above would fail on these real-looking mistakes."""
    good = _create(server, {**RICH_BODY, "metadata": {"fake_duration": "0.05"}}).json()
    schemas.check("Response", good)
    broken = [
        {**good, "usage": None},
        {k: v for k, v in good.items() if k != "tools"},
        {**good, "status": "done"},
        {**good, "error": {"code": "exploded", "message": "x"}},
        {**good, "metadata": {"n": 1}},
    ]
    for body in broken:
        assert schemas.errors("Response", body), body
    assert schemas.errors("ErrorResponse", {"error": {"message": "m", "type": "t"}})
    assert schemas.errors(
        "ResponseTextDeltaEvent",
        {"type": "response.output_text.delta", "delta": "x", "sequence_number": 1},
    )
