"""SSE streaming: full event order, resume with ``starting_after``, drops and cancels."""

from __future__ import annotations

import time

import openai
import pytest
from fake_openai_helpers import EVENT_SCHEMAS, read_sse, wait_terminal

TEXT_EVENTS = [
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 5,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]
FULL_ORDER = [
    "response.created",
    "response.queued",
    "response.in_progress",
    *TEXT_EVENTS,
    "response.completed",
]
STREAM_META = {"fake_duration": "0.25", "fake_output_chars": "100", "fake_chunk_chars": "20"}


def _create_stream(client, **meta):
    return client.responses.create(
        model="gpt-4o",
        input="Stream me a summary of this input text please.",
        background=True,
        store=True,
        stream=True,
        metadata={**STREAM_META, **meta},
    )


def test_background_stream_full_sequence(client):
    events = list(_create_stream(client))
    assert [e.type for e in events] == FULL_ORDER
    assert [e.sequence_number for e in events] == list(range(len(events)))
    created, final = events[0].response, events[-1].response
    assert created.status == "queued" and created.output == []
    assert final.status == "completed" and final.id == created.id
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done_text = next(e.text for e in events if e.type == "response.output_text.done")
    assert deltas == done_text == final.output_text and len(deltas) == 100
    assert wait_terminal(client, final.id).output_text == deltas


def test_stream_events_are_spread_over_the_duration(client):
    started = time.monotonic()
    arrivals = [time.monotonic() - started for _ in _create_stream(client, fake_duration="0.6")]
    assert arrivals[0] < 0.35 and arrivals[-1] >= 0.55


def test_resume_with_starting_after_gets_exactly_the_later_events(client, server):
    original = list(_create_stream(client))
    response_id = original[0].response.id
    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=4))
    assert [e.sequence_number for e in resumed] == list(range(5, len(original)))
    assert [e.model_dump() for e in resumed] == [e.model_dump() for e in original[5:]]
    everything = list(client.responses.retrieve(response_id, stream=True))
    assert [e.model_dump() for e in everything] == [e.model_dump() for e in original]
    log = server.log()[-1]
    assert log["route"] == "retrieve_stream" and "starting_after=4" not in log["path"]


def test_dropped_stream_resumes_from_the_cursor_and_follows_the_live_tail(client):
    stream = _create_stream(client, fake_duration="0.8", fake_stream_drop_after="4")
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for event in stream:
            seen.append(event)
    assert len(seen) == 4
    cursor = seen[-1].sequence_number
    rest = list(client.responses.retrieve(seen[0].response.id, stream=True, starting_after=cursor))
    assert rest[0].sequence_number == cursor + 1
    assert [e.type for e in seen + rest] == FULL_ORDER
    assert rest[-1].response.status == "completed"


def test_cancel_ends_a_live_stream_without_terminal_event(client):
    stream = _create_stream(client, fake_duration="3", fake_output_chars="600")
    started, types, response_id = time.monotonic(), [], None
    for event in stream:
        types.append(event.type)
        if event.type == "response.created":
            response_id = event.response.id
        if event.type == "response.output_text.delta" and types.count(event.type) == 1:
            assert client.responses.cancel(response_id).status == "cancelled"
    assert time.monotonic() - started < 2.5
    assert "response.completed" not in types and types[-1] == "response.output_text.delta"
    assert client.responses.retrieve(response_id).status == "cancelled"


def test_foreground_stream_has_no_queued_event(client):
    events = list(
        client.responses.create(model="m", input="hi there", stream=True, metadata=STREAM_META)
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.queued" not in types and types[-1] == "response.completed"
    assert events[0].response.status == "in_progress" and events[0].response.background is False


def test_failed_stream_ends_with_response_failed(client):
    events = list(_create_stream(client, fake_outcome="failed:server_error"))
    assert [e.type for e in events] == [
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.failed",
    ]
    assert events[-1].response.error.code == "server_error"


def test_incomplete_stream_ends_with_response_incomplete(client):
    events = list(_create_stream(client, fake_outcome="incomplete:content_filter"))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (
        deltas
        == events[-1].response.output_text
        == "".join(e.text for e in events if e.type == "response.output_text.done")
    )


def test_raw_sse_framing_and_obfuscation(server, schemas):
    body = {
        "model": "m",
        "input": "raw framing",
        "background": True,
        "stream": True,
        "metadata": STREAM_META,
    }
    reply, events = read_sse("POST", server.base_url + "/responses", json=body)
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["x-request-id"].startswith("req_")
    for name, data in events:
        assert data["type"] == name
        schemas.check(EVENT_SCHEMAS[name], data)
    deltas = [d for n, d in events if n == "response.output_text.delta"]
    assert deltas and all("obfuscation" in d for d in deltas)
    response_id = events[0][1]["response"]["id"]
    url = f"{server.base_url}/responses/{response_id}"
    params = {"stream": "true", "starting_after": "2", "include_obfuscation": "false"}
    _, again = read_sse("GET", url, params=params)
    assert [d["sequence_number"] for _, d in again] == list(range(3, len(events)))
    assert all("obfuscation" not in d for n, d in again if n == "response.output_text.delta")


def test_streaming_a_non_streamed_response_is_rejected(client):
    resp = client.responses.create(model="m", input="x", background=True, metadata=STREAM_META)
    with pytest.raises(openai.BadRequestError):
        list(client.responses.retrieve(resp.id, stream=True))
