"""Tool runs: function calls step by step, continuations and replays, web search, MCP approval."""

from __future__ import annotations

import json

import openai
import pytest
from fake_openai_helpers import fast, wait_terminal
from jsonschema import Draft202012Validator


def _function(name: str, properties: dict) -> dict:
    return {
        "type": "function",
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
        "strict": True,
    }


LOOKUP = _function(
    "lookup_order",
    {"order_reference": {"type": "string"}, "include_history": {"type": "boolean"}},
)
NOTE = _function(
    "add_note",
    {"note": {"type": "string"}, "priority": {"type": "string", "enum": ["low", "high"]}},
)
EMAIL = _function(
    "email_customer",
    {
        "to": {"type": "string", "format": "email"},
        "copies": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "options": {
            "type": "object",
            "properties": {"urgent": {"type": "boolean"}, "channel": {"type": ["string", "null"]}},
            "required": ["urgent", "channel"],
            "additionalProperties": False,
        },
    },
)
PROMPT = "Customer asks where their parcel is.\nOrder reference: A-1042\nPriority: HIGH"
MCP = {
    "type": "mcp",
    "server_label": "tickets",
    "server_url": "https://mcp.example.com/sse",
    "require_approval": "always",
    "allowed_tools": ["create_ticket"],
}


def _create(client, tools, *, meta=None, **kwargs):
    kwargs.setdefault("input", PROMPT)
    return client.responses.create(
        model="gpt-4o", tools=tools, metadata=fast(**(meta or {})), **kwargs
    )


def _calls(response) -> list:
    return [item for item in response.output if item.type == "function_call"]


def _outputs(response, text="{name} done") -> list[dict]:
    return [
        {"type": "function_call_output", "call_id": c.call_id, "output": text.format(name=c.name)}
        for c in _calls(response)
    ]


def _continue(client, tools, previous, input_items, **kwargs):
    return _create(client, tools, previous_response_id=previous.id, input=input_items, **kwargs)


def test_default_plan_calls_each_function_tool_in_its_own_step_then_answers(client):
    tools = [LOOKUP, NOTE]
    first = _create(client, tools)
    assert first.status == "completed" and first.output_text == ""
    assert [c.name for c in _calls(first)] == ["lookup_order"]
    second = _continue(client, tools, first, _outputs(first))
    assert [c.name for c in _calls(second)] == ["add_note"]
    assert second.previous_response_id == first.id
    final = _continue(client, tools, second, _outputs(second))
    assert _calls(final) == [] and [item.type for item in final.output] == ["message"]
    assert final.output_text and final.usage.output_tokens > 0
    call = _calls(first)[0]
    assert call.id.startswith("fc_") and call.call_id.startswith("call_")
    assert call.status == "completed"


def test_tool_plan_runs_parallel_calls_in_one_step(client):
    tools = [LOOKUP, NOTE, EMAIL]
    plan = {"fake_tool_plan": "lookup_order;add_note,email_customer"}
    first = _create(client, tools, meta=plan)
    second = _continue(client, tools, first, _outputs(first), meta=plan)
    assert [c.name for c in _calls(second)] == ["add_note", "email_customer"]
    call_ids = [c.call_id for c in _calls(first) + _calls(second)]
    assert len(set(call_ids)) == 3
    final = _continue(client, tools, second, _outputs(second), meta=plan)
    assert final.output[-1].type == "message" and not _calls(final)


def test_tool_plan_none_answers_directly(client):
    response = _create(client, [LOOKUP], meta={"fake_tool_plan": "none"})
    assert [item.type for item in response.output] == ["message"]
    assert "Tool results" not in response.output_text


def test_plan_naming_a_tool_not_offered_is_refused_on_metadata(client):
    with pytest.raises(openai.BadRequestError) as err:
        _create(client, [LOOKUP], meta={"fake_tool_plan": "lookup_order;refund"})
    assert err.value.body["param"] == "metadata" and "'refund'" in err.value.message


def test_arguments_come_from_the_input_and_fit_the_strict_schema(client):
    tools = [LOOKUP, NOTE, EMAIL]
    plan = {"fake_tool_plan": "lookup_order,add_note,email_customer"}
    prompt = PROMPT + "\nInclude history = yes\nnote: call back, after 5pm; copies: 3"
    response = _create(client, tools, meta=plan, input=prompt)
    arguments = {c.name: json.loads(c.arguments) for c in _calls(response)}
    assert arguments["lookup_order"] == {"order_reference": "A-1042", "include_history": True}
    assert arguments["add_note"] == {"note": "call back, after 5pm", "priority": "high"}
    email = arguments["email_customer"]
    assert email["to"].startswith("customer-") and email["to"].endswith("@example.com")
    assert email["copies"] == 3 and email["tags"] == []
    assert email["options"] == {"urgent": False, "channel": "channel-" + email["to"][9:15]}
    for tool in tools:
        Draft202012Validator(tool["parameters"]).validate(arguments[tool["name"]])
    again = _create(client, tools, meta=plan, input=prompt)
    assert [c.arguments for c in _calls(again)] == [c.arguments for c in _calls(response)]


def test_continuation_without_every_output_is_refused_with_openais_message(client):
    tools = [LOOKUP, NOTE]
    plan = {"fake_tool_plan": "lookup_order,add_note"}
    first = _create(client, tools, meta=plan)
    missing = _calls(first)[1].call_id
    with pytest.raises(openai.BadRequestError) as err:
        _continue(client, tools, first, _outputs(first)[:1], meta=plan)
    assert err.value.body["message"] == f"No tool output found for function call {missing}."
    assert err.value.body["param"] == "input" and err.value.type == "invalid_request_error"


def test_unknown_previous_response_is_refused(client):
    with pytest.raises(openai.BadRequestError) as err:
        _create(client, [LOOKUP], previous_response_id="resp_gone", input="hi")
    assert err.value.body["message"] == "Previous response with id 'resp_gone' not found."
    assert err.value.body["param"] == "previous_response_id"


def test_final_answer_shows_what_each_tool_returned(client):
    tools = [LOOKUP, NOTE]
    first = _create(client, tools)
    edited = [{**_outputs(first)[0], "output": "Order A-1042 shipped (edited by a reviewer)"}]
    second = _continue(client, tools, first, edited)
    refused = _outputs(second, "Rejected by reviewer: wrong tone. " + "x" * 400)
    final = _continue(client, tools, second, refused)
    text = final.output_text
    assert "\n\nTool results:\n" in text
    assert "- lookup_order: Order A-1042 shipped (edited by a reviewer)" in text
    assert "- add_note: Rejected by reviewer: wrong tone. xxx" in text
    assert "x" * 200 not in text  # long outputs are cut to ~200 characters


def test_background_continuation_refused_then_a_replay_completes(client):
    tools = [LOOKUP, NOTE]
    meta = {"fake_reject_continuation": "background"}
    first = wait_terminal(client, _create(client, tools, meta=meta, background=True).id)
    outputs = _outputs(first)
    with pytest.raises(openai.BadRequestError) as err:
        _continue(client, tools, first, outputs, meta=meta, background=True)
    expected = f"No tool call found for function call output with call_id {outputs[0]['call_id']}."
    assert err.value.body["message"] == expected and err.value.body["param"] == "input"

    original = [{"role": "user", "content": PROMPT}]
    replayed = [*original, *[c.model_dump(exclude_none=True) for c in _calls(first)], *outputs]
    second = wait_terminal(
        client, _create(client, tools, meta=meta, background=True, input=replayed).id
    )
    assert [c.name for c in _calls(second)] == ["add_note"]
    via_previous = _continue(client, tools, first, outputs)  # not background: accepted
    assert [c.arguments for c in _calls(via_previous)] == [c.arguments for c in _calls(second)]

    replayed += [*[c.model_dump(exclude_none=True) for c in _calls(second)], *_outputs(second)]
    final = wait_terminal(
        client, _create(client, tools, meta=meta, background=True, input=replayed).id
    )
    assert final.status == "completed" and final.output[-1].type == "message"
    assert "- lookup_order: lookup_order done\n- add_note: add_note done" in final.output_text


def test_replay_missing_an_output_is_refused(client):
    first = _create(client, [LOOKUP, NOTE])
    replayed = [{"role": "user", "content": PROMPT}, _calls(first)[0].model_dump()]
    with pytest.raises(openai.BadRequestError) as err:
        _create(client, [LOOKUP, NOTE], input=replayed)
    assert err.value.body["message"] == (
        f"No tool output found for function call {_calls(first)[0].call_id}."
    )


def test_web_search_answer_starts_with_the_search_and_cites_two_sources(client):
    response = _create(client, [{"type": "web_search"}], input="Latest Django release notes?")
    search, message = response.output
    assert search.type == "web_search_call" and search.status == "completed"
    assert search.action.type == "search" and search.action.query == "Latest Django release notes"
    text = message.content[0].text
    citations = message.content[0].annotations
    assert len(citations) == 2
    for citation in citations:
        assert citation.type == "url_citation"
        assert text[citation.start_index : citation.end_index] == citation.title
    assert citations[0].url.startswith("https://example.com/")
    assert citations[1].url.startswith("https://example.org/")


def test_mcp_call_waits_for_approval_and_runs_when_approved(client):
    first = _create(client, [MCP])
    (request,) = first.output
    assert request.type == "mcp_approval_request" and request.name == "create_ticket"
    assert request.server_label == "tickets" and json.loads(request.arguments)
    approval = {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}
    final = _continue(client, [MCP], first, [approval])
    call, message = final.output
    assert call.type == "mcp_call" and call.approval_request_id == request.id
    assert call.output and call.status == "completed"
    assert f"- tickets.create_ticket: {call.output}" in message.content[0].text


def test_mcp_call_declined_says_so_and_why(client):
    first = _create(client, [MCP])
    denial = {
        "type": "mcp_approval_response",
        "approval_request_id": first.output[0].id,
        "approve": False,
        "reason": "Not during the freeze.",
    }
    final = _continue(client, [MCP], first, [denial])
    assert [item.type for item in final.output] == ["message"]
    assert "- tickets.create_ticket: declined by the user (Not during the freeze.)" in (
        final.output_text
    )


def test_mcp_call_without_approval_runs_at_once(client):
    response = _create(client, [{**MCP, "require_approval": "never"}])
    call, message = response.output
    assert call.type == "mcp_call" and call.approval_request_id is None
    assert f"- tickets.create_ticket: {call.output}" in message.content[0].text


def test_function_call_step_streams_its_arguments(client):
    events = list(_create(client, [LOOKUP], stream=True, meta={"fake_chunk_chars": "8"}))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[2] == "response.output_item.added" and types[-2] == "response.output_item.done"
    assert types[-3] == "response.function_call_arguments.done"
    assert types[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == events[-3].arguments == _calls(events[-1].response)[0].arguments
    assert events[2].item.arguments == "" and events[2].item.status == "in_progress"
