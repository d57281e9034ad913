"""Small helpers shared by the fake server tests."""

from __future__ import annotations

import json
import time

import httpx2 as httpx

# One pooled client for raw HTTP checks: a fresh httpx client per call costs an SSL context.
HTTP = httpx.Client(timeout=10)


def wait_terminal(client, response_id: str, timeout: float = 5.0):
    """Poll like Steward does (but fast) until the response leaves queued/in_progress."""
    deadline = time.monotonic() + timeout
    while True:
        resp = client.responses.retrieve(response_id)
        if resp.status not in ("queued", "in_progress"):
            return resp
        assert time.monotonic() < deadline, f"{response_id} still {resp.status}"
        time.sleep(0.05)


def fast(**extra: str) -> dict[str, str]:
    """Scenario metadata for a short run."""
    return {"fake_duration": "0.2", **extra}


EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent",
    "response.queued": "ResponseQueuedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.output_text.annotation.added": "ResponseOutputTextAnnotationAddedEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.web_search_call.in_progress": "ResponseWebSearchCallInProgressEvent",
    "response.web_search_call.searching": "ResponseWebSearchCallSearchingEvent",
    "response.web_search_call.completed": "ResponseWebSearchCallCompletedEvent",
    "response.mcp_call.in_progress": "ResponseMCPCallInProgressEvent",
    "response.mcp_call_arguments.done": "ResponseMCPCallArgumentsDoneEvent",
    "response.mcp_call.completed": "ResponseMCPCallCompletedEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.failed": "ResponseFailedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "error": "ResponseErrorEvent",
}


def read_sse(method: str, url: str, **kwargs) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    """Read a whole SSE reply raw: (reply, [(event name, parsed data), …])."""
    events: list[tuple[str, dict]] = []
    with HTTP.stream(method, url, **kwargs) as reply:
        text = "".join(reply.iter_text())
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(lines) == {"event", "data"}, block
        events.append((lines["event"], json.loads(lines["data"])))
    return reply, events
