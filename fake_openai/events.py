"""The stream events of one response, derived deterministically from its plan.

The whole sequence is built once (only for responses somebody streams) with a due time per
event, so a resumed stream (``starting_after=N``) gets byte-identical events with the same
sequence numbers, and a live tail simply waits for each event's due time. Sequence numbers start
at 0, as OpenAI's streams do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ids import message_id_for
from .state import dumps, output_text_part

if TYPE_CHECKING:
    from .state import FakeResponse


@dataclass(frozen=True, slots=True)
class StreamEvent:
    at: float  # unix time the event becomes visible
    seq: int
    type: str
    frame: bytes  # the encoded SSE frame
    obfuscated: bytes | None  # delta frames carry padding unless include_obfuscation=false


def _frame(event_type: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event_type.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def build_events(resp: FakeResponse) -> list[StreamEvent]:
    events: list[StreamEvent] = []

    def add(at: float, event_type: str, **fields: Any) -> None:
        seq = len(events)
        data = {"type": event_type, **fields, "sequence_number": seq}
        obfuscated = None
        if event_type == "response.output_text.delta":
            pad = hashlib.sha256(f"{resp.id}:{seq}".encode()).hexdigest()
            obfuscated = _frame(event_type, {**data, "obfuscation": pad[: 4 + seq % 12]})
        events.append(StreamEvent(at, seq, event_type, _frame(event_type, data), obfuscated))

    created, start, end = resp.created, resp.start_at, resp.end_at
    add(
        created,
        "response.created",
        response=resp.render("queued" if resp.background else "in_progress"),
    )
    if resp.background:
        add(created, "response.queued", response=resp.render("queued"))
    add(start, "response.in_progress", response=resp.render("in_progress"))
    if resp.outcome == "failed":
        add(end, "response.failed", response=resp.render("failed"))
        return events

    final_status = "completed" if resp.outcome == "completed" else "incomplete"
    items = resp.output_items(final_status)
    tools = items[:-1] if resp.turn.answers else items
    steps = [step for index, item in enumerate(tools) for step in _item_events(item, index, resp)]
    span = end - start
    for i, (event_type, fields) in enumerate(steps):
        # Tool items come before the answer's text, or fill the duration when there is none.
        at = start if resp.turn.answers else start + span * (i + 1) / (len(steps) + 1)
        add(at, event_type, **fields)
    if not resp.turn.answers:
        add(end, f"response.{resp.outcome}", response=resp.render(resp.outcome))
        return events

    index = len(tools)
    item_id = message_id_for(resp.id)
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    opening = resp.message_item("in_progress")
    opening["content"] = []
    add(start, "response.output_item.added", output_index=index, item=opening)
    add(start, "response.content_part.added", **where, part=output_text_part(""))
    pieces = chunks(resp.text, resp.scenario.chunk_chars)
    for i, piece in enumerate(pieces):
        add(
            start + span * (i + 1) / (len(pieces) + 1),
            "response.output_text.delta",
            **where,
            delta=piece,
            logprobs=[],
        )
    for n, annotation in enumerate(resp.annotations):
        add(
            end,
            "response.output_text.annotation.added",
            **where,
            annotation_index=n,
            annotation=annotation,
        )
    add(end, "response.output_text.done", **where, text=resp.text, logprobs=[])
    part = output_text_part(resp.text, resp.annotations)
    add(end, "response.content_part.done", **where, part=part)
    add(end, "response.output_item.done", output_index=index, item=items[-1])
    add(end, f"response.{resp.outcome}", response=resp.render(resp.outcome))
    return events


def _item_events(item: dict[str, Any], index: int, resp: FakeResponse) -> list[tuple[str, dict]]:
    """(type, fields) of the events announcing one tool item, from added to done."""
    where = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    opening = {**item, "status": "in_progress"} if "status" in item else dict(item)
    middle: list[tuple[str, dict]] = []
    if kind == "function_call":
        opening["arguments"] = ""
        for piece in chunks(item["arguments"], resp.scenario.chunk_chars):
            middle.append(("response.function_call_arguments.delta", {**where, "delta": piece}))
        done = {**where, "name": item["name"], "arguments": item["arguments"]}
        middle.append(("response.function_call_arguments.done", done))
    elif kind == "web_search_call":
        for phase in ("in_progress", "searching", "completed"):
            middle.append((f"response.web_search_call.{phase}", where))
    elif kind == "mcp_call":
        opening["output"] = None
        middle.append(("response.mcp_call.in_progress", where))
        middle.append(
            ("response.mcp_call_arguments.done", {**where, "arguments": item["arguments"]})
        )
        middle.append(("response.mcp_call.completed", where))
    return [
        ("response.output_item.added", {"output_index": index, "item": opening}),
        *middle,
        ("response.output_item.done", {"output_index": index, "item": item}),
    ]
