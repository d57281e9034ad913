"""In-memory responses whose status is computed lazily from timestamps.

A response never has a task of its own: it is a record of when it was created and how long its
scenario lasts, and every read works out where it stands *now*. That is what lets one process
hold tens of thousands of in-flight responses and still answer thousands of retrieves a second.
The rendered JSON for each status is cached, because a response's body only changes when its
status does.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from .ids import message_id_for
from .scenarios import Scenario, input_text, is_reasoning_model, output_text, tokens_for
from .tools import Turn, call_item, citations, web_search_item

TERMINAL = frozenset({"completed", "failed", "incomplete", "cancelled"})

ERROR_MESSAGES = {
    "server_error": "The model failed to generate a response.",
    "rate_limit_exceeded": "Rate limit reached while generating the response.",
    "invalid_prompt": "Invalid prompt: your prompt was flagged as potentially violating our "
    "usage policy.",
}

# Request parameters echoed into the Response, with the value the API reports when omitted.
ECHOED_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "service_tier": "default",
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
}
ECHOED_OPTIONAL = ("user", "prompt_cache_key", "safety_identifier", "conversation", "prompt")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class FakeResponse:
    """One response: immutable plan (times, text, usage) plus the little state that can change."""

    __slots__ = (
        "id",
        "model",
        "metadata",
        "background",
        "streamed",
        "echo",
        "scenario",
        "created",
        "start_at",
        "end_at",
        "cancelled_at",
        "outcome",
        "incomplete_reason",
        "text",
        "annotations",
        "turn",
        "usage",
        "retrieve_errors_left",
        "stream_connections",
        "_bodies",
        "_events",
        "_changed",
    )

    def __init__(
        self,
        *,
        response_id: str,
        params: dict[str, Any],
        turn: Turn,
        scenario: Scenario,
        background: bool,
        streamed: bool,
        now: float,
    ) -> None:
        self.id = response_id
        self.model = params["model"]
        self.metadata = params.get("metadata") or {}
        self.background = background
        self.streamed = streamed
        self.scenario = scenario
        self.created = now
        self.start_at = now + scenario.queued_for
        self.end_at = now + scenario.duration
        self.cancelled_at: float | None = None
        self.echo = _echoed(params)
        self.retrieve_errors_left = list(scenario.retrieve_errors)
        self.stream_connections = 0
        self._bodies: dict[str, bytes] = {}
        self._events: list | None = None
        self._changed: asyncio.Event | None = None
        self.turn = turn
        self._plan_output(params)

    def _plan_output(self, params: dict[str, Any]) -> None:
        sc, turn = self.scenario, self.turn
        instructions = params.get("instructions")
        read = input_text(list(turn.conversation)) if turn.conversation else turn.source_text
        prompt = (instructions if isinstance(instructions, str) else "") + read
        input_tokens = tokens_for(prompt)
        cached = sc.cached_tokens
        if cached is None:
            cached = (input_tokens // 2) // 128 * 128 if input_tokens >= 1024 else 0
        full, cited = "", []
        if turn.answers:
            full = output_text(turn.source_text, sc.output_chars)
            if turn.web_query is not None:
                sources, found = citations(turn.web_query)
                cited = [(url, title, len(full) + start) for url, title, start in found]
                full += sources
            full += turn.notes
        call_tokens = sum(tokens_for(call.arguments) for call in turn.calls)
        reasoning = sc.reasoning_tokens
        if reasoning is None:
            planned = tokens_for(full) + call_tokens
            reasoning = 64 + planned // 2 if is_reasoning_model(self.model) else 0
        limit = params.get("max_output_tokens")
        outcome, reason = sc.outcome, sc.incomplete_reason
        if not sc.outcome_explicit and limit and tokens_for(full) + call_tokens + reasoning > limit:
            outcome, reason = "incomplete", "max_output_tokens"
        text = full
        if outcome == "incomplete":
            if reason == "max_output_tokens" and limit:
                reasoning = min(reasoning, limit)
                text = full[: max(0, limit - reasoning) * 4]
            else:
                text = full[: len(full) * (6 if reason == "max_output_tokens" else 4) // 10]
        elif outcome == "failed":
            text = ""
        self.outcome, self.incomplete_reason, self.text = outcome, reason, text
        self.annotations = [
            {
                "type": "url_citation",
                "url": url,
                "title": title,
                "start_index": start,
                "end_index": start + len(title),
            }
            for url, title, start in cited
            if start + len(title) <= len(text)
        ]
        output_tokens = tokens_for(text) + call_tokens + reasoning if outcome != "failed" else 0
        if limit:
            output_tokens = min(output_tokens, limit)
        self.usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {
                "cached_tokens": min(cached, input_tokens),
                "cache_write_tokens": 0,
            },
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": min(reasoning, output_tokens)},
            "total_tokens": input_tokens + output_tokens,
        }

    # --- lazy status -------------------------------------------------------------------------

    def status_at(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if now < self.start_at:
            return "queued"
        if now < self.end_at:
            return "in_progress"
        return self.outcome

    def terminal_at(self) -> float:
        return self.cancelled_at if self.cancelled_at is not None else self.end_at

    def cancel(self, now: float) -> None:
        self.cancelled_at = now
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def changed(self) -> asyncio.Event:
        """An event set when the response is cancelled: wakes live stream tails."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    # --- rendering ---------------------------------------------------------------------------

    def message_item(self, status: str) -> dict[str, Any]:
        return {
            "id": message_id_for(self.id),
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": [output_text_part(self.text, self.annotations)],
        }

    def output_items(self, status: str) -> list[dict[str, Any]]:
        """The output of a completed or incomplete response: tool items, then the message."""
        items: list[dict[str, Any]] = []
        if self.turn.web_query is not None:
            items.append(web_search_item(self.turn.web_query, self.id))
        item_status = "completed" if status == "completed" or self.turn.answers else status
        items += [call_item(c, self.id, i, item_status) for i, c in enumerate(self.turn.calls)]
        if self.turn.answers:
            items.append(self.message_item(status))
        return items

    def conversation(self) -> tuple[dict[str, Any], ...]:
        """The run so far, as a continuation with ``previous_response_id`` starts from it."""
        output = self.output_items(self.outcome) if self.outcome != "failed" else []
        return (*self.turn.conversation, *output)

    def render(self, status: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": int(self.created),
            "status": status,
            "background": self.background,
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            "model": self.model,
            "output": [],
            **self.echo,
            "metadata": self.metadata,
        }
        if status == "completed":
            body["completed_at"] = int(self.end_at)
            body["output"] = self.output_items("completed")
        elif status == "incomplete":
            body["incomplete_details"] = {"reason": self.incomplete_reason}
            body["output"] = self.output_items("incomplete")
        elif status == "failed":
            code = self.scenario.error_code or "server_error"
            message = ERROR_MESSAGES.get(code, f"The response failed ({code}).")
            body["error"] = {"code": code, "message": message}
        if status in TERMINAL and status != "cancelled":
            body["usage"] = self.usage
        return body

    def body(self, status: str) -> bytes:
        cached = self._bodies.get(status)
        if cached is None:
            cached = self._bodies[status] = dumps(self.render(status))
        return cached

    def events(self) -> list:
        if self._events is None:
            from .events import build_events

            self._events = build_events(self)
        return self._events


def output_text_part(text: str, annotations: list | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def _echoed(params: dict[str, Any]) -> dict[str, Any]:
    echo = {}
    for key, default in ECHOED_DEFAULTS.items():
        value = params.get(key)
        echo[key] = default if value is None else value
    if echo["service_tier"] == "auto":
        echo["service_tier"] = "default"
    for key in ECHOED_OPTIONAL:
        if params.get(key) is not None:
            echo[key] = params[key]
    return echo


class Store:
    """All responses by id, with retention applied lazily on read and by a periodic sweep."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.responses: dict[str, FakeResponse] = {}
        self.create_attempts: dict[str, int] = {}

    def clear(self) -> None:
        self.responses.clear()
        self.create_attempts.clear()

    def add(self, resp: FakeResponse) -> None:
        self.responses[resp.id] = resp

    def get(self, response_id: str, now: float, retention: float) -> FakeResponse | None:
        resp = self.responses.get(response_id)
        if resp is None:
            return None
        if now >= resp.terminal_at() + retention and resp.status_at(now) in TERMINAL:
            del self.responses[response_id]
            return None
        return resp

    def delete(self, response_id: str) -> bool:
        return self.responses.pop(response_id, None) is not None

    def sweep(self, now: float, retention: float) -> int:
        expired = [
            rid
            for rid, resp in self.responses.items()
            if now >= resp.terminal_at() + retention and resp.status_at(now) in TERMINAL
        ]
        for rid in expired:
            del self.responses[rid]
        return len(expired)

    def count_create(self, key: str) -> int:
        """How many creates with this scenario key came before this one."""
        seen = self.create_attempts.get(key, 0)
        self.create_attempts[key] = seen + 1
        return seen
