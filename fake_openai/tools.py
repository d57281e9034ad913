"""Tool runs: what the fake "model" does in one response of a multi-step run, and the items it
outputs.

A run is read from its *conversation*: the input items of every create so far plus the items
the fake itself output. With ``previous_response_id`` the fake holds that conversation (each
response keeps its own); without one, the client replays it whole as ``input``. Either way the
same function reads it, so a continuation and a replay of the same run give the same next step:

1. an MCP tool needing approval and not yet asked: an ``mcp_approval_request``;
2. then (the response right after the approval answer) the ``mcp_call`` when approved;
3. the next step of the function plan (``fake_tool_plan``, or one step per function tool):
   one ``function_call`` per call; the step is the number of steps whose calls are already in
   the conversation;
4. after the last step: the answer (a ``web_search_call`` first when the web search tool is
   offered), whose text ends with what each tool returned, so a test sees what reached the model.

Every item id derives from the response id, so a resumed stream sees the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from .arguments import arguments_for
from .errors import bad_request
from .scenarios import Scenario, ScenarioError, input_text

# Item types that are not messages: left out of the text the answer and the arguments read.
TOOL_ITEMS = frozenset(
    {
        "function_call",
        "function_call_output",
        "web_search_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "reasoning",
    }
)
WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
OUTPUT_SHOWN = 200  # characters of each tool output quoted in the final answer


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call the model makes: ``kind`` function | mcp_request | mcp_call."""

    kind: str
    name: str
    arguments: str
    server_label: str = ""
    approval_request_id: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """What one response holds: tool calls, then (``answers``) a message ending in ``notes``."""

    calls: tuple[Call, ...] = ()
    answers: bool = True
    web_query: str | None = None  # a web_search_call first, and citations in the message
    notes: str = ""  # the "Tool results" section appended to the answer
    source_text: str = ""  # the messages the answer is built from
    conversation: tuple[dict, ...] = ()  # input so far, this create's included


def plain_turn(source_text: str) -> Turn:
    return Turn(source_text=source_text)


def message_text(items: list | tuple) -> str:
    """The text of the message items only: what the user asked, without tool traffic."""
    return input_text([i for i in items if not (isinstance(i, dict) and _kind(i) in TOOL_ITEMS)])


def _kind(item: dict) -> str:
    return item.get("type") or "message"


def as_items(value: str | list) -> list:
    return [{"role": "user", "content": value}] if isinstance(value, str) else list(value)


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- reading the run from its conversation -------------------------------------------------


def uses_tools(
    body: dict, scenario: Scenario, previous_conversation: tuple[dict, ...] | None
) -> bool:
    """Whether this create takes part in a tool run (else the plain path, unchanged)."""
    if body.get("tools") or scenario.tool_plan or previous_conversation is not None:
        return True
    items = body["input"] if isinstance(body["input"], list) else ()
    return any(isinstance(i, dict) and _kind(i) in TOOL_ITEMS for i in items)


def refused_call_id(body: dict) -> str | None:
    """The call id a provider refusing background continuations names (None: nothing to name)."""
    for item in as_items(body["input"]):
        if isinstance(item, dict) and _kind(item) == "function_call_output":
            return item.get("call_id")
        if isinstance(item, dict) and _kind(item) == "mcp_approval_response":
            return item.get("approval_request_id")
    return None


def plan_turn(
    body: dict, scenario: Scenario, previous_conversation: tuple[dict, ...] | None
) -> Turn:
    """The next turn of the run; 400 (``ApiError``) for a conversation the API would refuse,
    ``ScenarioError`` for a plan naming a tool that is not offered."""
    conversation = (*(previous_conversation or ()), *as_items(body["input"]))
    items = [i for i in conversation if isinstance(i, dict)]
    outputs = _check_outputs(items)
    source = message_text(conversation)
    tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
    functions = {t["name"]: t for t in tools if t.get("type") == "function" and t.get("name")}
    plan = _plan(scenario, list(functions))
    if body.get("tool_choice") == "none":
        tools, plan = [], ()
    prompt = "\n".join(filter(None, [body.get("instructions") or "", source]))
    digest = digest_of(source)
    base = Turn(source_text=source, conversation=conversation)

    calls: list[Call] = []
    mcp = next((t for t in tools if t.get("type") == "mcp"), None)
    if mcp is not None:
        step = _mcp_step(mcp, items, source, digest)
        if step is not None and step.kind == "mcp_request":
            return replace(base, calls=(step,), answers=False)
        if step is not None:
            calls.append(step)

    made = sum(1 for i in items if _kind(i) == "function_call")
    done = 0
    while done < len(plan) and sum(len(s) for s in plan[: done + 1]) <= made:
        done += 1
    if done < len(plan):
        for name in plan[done]:
            arguments = arguments_for(functions[name], prompt, digest)
            calls.append(Call("function", name, json.dumps(arguments, ensure_ascii=False)))
        return replace(base, calls=tuple(calls), answers=False)

    web = any(t.get("type") in WEB_SEARCH_TOOLS for t in tools)
    notes = _notes(items, outputs, calls)
    return replace(
        base, calls=tuple(calls), web_query=search_query(source) if web else None, notes=notes
    )


def _plan(scenario: Scenario, offered: list[str]) -> tuple[tuple[str, ...], ...]:
    if scenario.tool_plan is None:
        return tuple((name,) for name in offered)
    for step in scenario.tool_plan:
        for name in step:
            if name not in offered:
                raise ScenarioError(
                    f"fake_tool_plan: {name!r} is not among the function tools offered "
                    f"({', '.join(offered) or 'none'})"
                )
    return scenario.tool_plan


def _check_outputs(items: list[dict]) -> dict[str, dict]:
    """Every function call has its output and every output its call, as the API demands."""
    calls = [i.get("call_id") for i in items if _kind(i) == "function_call"]
    outputs = {i.get("call_id"): i for i in items if _kind(i) == "function_call_output"}
    for call_id in calls:
        if call_id not in outputs:
            raise bad_request(f"No tool output found for function call {call_id}.", "input")
    for call_id in outputs:
        if call_id not in calls:
            raise bad_request(
                f"No tool call found for function call output with call_id {call_id}.", "input"
            )
    return outputs


def _mcp_step(mcp: dict, items: list[dict], source: str, digest: str) -> Call | None:
    """The approval request to ask, the approved call to make now, or None (nothing to do)."""
    label = mcp.get("server_label") or "mcp"
    name = _mcp_tool_name(mcp)
    arguments = json.dumps({"input": " ".join(source.split())[:80]}, ensure_ascii=False)
    requests = [i for i in items if _kind(i) == "mcp_approval_request"]
    answers = {
        i.get("approval_request_id"): i for i in items if _kind(i) == "mcp_approval_response"
    }
    for request_id in answers:
        if request_id not in {r.get("id") for r in requests}:
            raise bad_request(
                f"No MCP approval request found for approval_request_id {request_id}.", "input"
            )
    if not requests:
        if _needs_approval(mcp, name):
            return Call("mcp_request", name, arguments, server_label=label)
        if any(_kind(i) == "mcp_call" for i in items):
            return None
        return Call(
            "mcp_call", name, arguments, server_label=label, output=_mcp_output(name, digest)
        )
    request = requests[-1]
    answer = answers.get(request.get("id"))
    if answer is None:
        raise bad_request(
            f"No approval response found for MCP approval request {request.get('id')}.", "input"
        )
    position = items.index(answer)
    called = any(
        _kind(i) == "mcp_call" and i.get("approval_request_id") == request.get("id") for i in items
    )
    later_calls = any(_kind(i) == "function_call" for i in items[position:])
    if not answer.get("approve") or called or later_calls:
        return None
    return Call(
        "mcp_call",
        request.get("name") or name,
        request.get("arguments") or arguments,
        server_label=request.get("server_label") or label,
        approval_request_id=request.get("id"),
        output=_mcp_output(request.get("name") or name, digest),
    )


def _mcp_tool_name(mcp: dict) -> str:
    allowed = mcp.get("allowed_tools")
    if isinstance(allowed, dict):
        allowed = allowed.get("tool_names")
    return allowed[0] if isinstance(allowed, list) and allowed else "run"


def _needs_approval(mcp: dict, name: str) -> bool:
    policy = mcp.get("require_approval")
    if policy == "never":
        return False
    if isinstance(policy, dict):
        never = (policy.get("never") or {}).get("tool_names") or []
        return name not in never
    return True


def _mcp_output(name: str, digest: str) -> str:
    return f"{name} finished: ok ({digest[:6]})"


def search_query(source: str) -> str:
    """What the "model" searches for: the words of the prompt's last paragraph (where a job
    type's instructions put the person's question), at most eight."""
    paragraphs = [part for part in source.split("\n\n") if part.strip()]
    words = re.findall(r"\w+", paragraphs[-1] if paragraphs else "")[:8]
    return " ".join(words) or "latest news"


# --- the answer's closing section ----------------------------------------------------------


def _shown(output: Any) -> str:
    if isinstance(output, list):
        output = " ".join(p.get("text", "") for p in output if isinstance(p, dict))
    text = " ".join(str(output).split())
    return text if len(text) <= OUTPUT_SHOWN else text[: OUTPUT_SHOWN - 1] + "…"


def _notes(items: list[dict], outputs: dict[str, dict], calls: list[Call]) -> str:
    """``Tool results:`` then one line per tool output the model received, in order."""
    lines = []
    for item in items:
        kind = _kind(item)
        if kind == "function_call":
            output = outputs[item.get("call_id")].get("output", "")
            lines.append(f"- {item.get('name')}: {_shown(output)}")
        elif kind == "mcp_approval_response":
            request = next(
                i
                for i in items
                if _kind(i) == "mcp_approval_request" and i.get("id") == item["approval_request_id"]
            )
            label = f"{request.get('server_label')}.{request.get('name')}"
            if not item.get("approve"):
                reason = item.get("reason") or "no reason given"
                lines.append(f"- {label}: declined by the user ({_shown(reason)})")
        elif kind == "mcp_call" and item.get("output") is not None:
            label = f"{item.get('server_label')}.{item.get('name')}"
            lines.append(f"- {label}: {_shown(item['output'])}")
    for call in calls:
        if call.kind == "mcp_call":
            lines.append(f"- {call.server_label}.{call.name}: {_shown(call.output)}")
    return "\n\nTool results:\n" + "\n".join(lines) if lines else ""


# --- rendering items -------------------------------------------------------------------------


def _item_hex(response_id: str, index: int, salt: str) -> str:
    return hashlib.sha256(f"{response_id}:{salt}:{index}".encode()).hexdigest()


def call_item(call: Call, response_id: str, index: int, status: str = "completed") -> dict:
    """The output item of ``call`` (``status``: completed, in_progress or incomplete)."""
    if call.kind == "function":
        return {
            "type": "function_call",
            "id": "fc_" + _item_hex(response_id, index, "item")[:50],
            "call_id": "call_" + _item_hex(response_id, index, "call")[:24],
            "name": call.name,
            "arguments": call.arguments,
            "status": status,
        }
    if call.kind == "mcp_request":
        return {
            "type": "mcp_approval_request",
            "id": "mcpr_" + _item_hex(response_id, index, "item")[:50],
            "server_label": call.server_label,
            "name": call.name,
            "arguments": call.arguments,
        }
    done = status == "completed"
    return {
        "type": "mcp_call",
        "id": "mcp_" + _item_hex(response_id, index, "item")[:50],
        "server_label": call.server_label,
        "name": call.name,
        "arguments": call.arguments,
        "output": call.output if done else None,
        "error": None,
        "status": status,
        "approval_request_id": call.approval_request_id,
    }


def web_search_item(query: str, response_id: str, status: str = "completed") -> dict:
    return {
        "type": "web_search_call",
        "id": "ws_" + _item_hex(response_id, 0, "web")[:50],
        "status": status,
        "action": {"type": "search", "query": query, "queries": [query]},
    }


def citations(query: str) -> tuple[str, list[tuple[str, str, int]]]:
    """A ``Sources:`` sentence and its citations (url, title, start within the sentence)."""
    slug = "-".join(query.lower().split()[:4]) or "search"
    digest = digest_of(query)[:6]
    sources = [
        (f"https://example.com/articles/{slug}-{digest}", f"Example article on {query}"),
        (f"https://example.org/notes/{digest}", f"Example notes ({digest})"),
    ]
    sentence = "\n\nSources: "
    found = []
    for i, (url, title) in enumerate(sources):
        if i:
            sentence += "; "
        found.append((url, title, len(sentence)))
        sentence += title
    return sentence + ".", found
