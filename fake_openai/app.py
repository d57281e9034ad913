"""The ``/v1/responses`` routes and the Starlette application.

Handlers validate like the real API where Steward could get it wrong (missing model or input,
non-string metadata, background without store), then read or change a ``FakeResponse``. All
cross-cutting work (ids, faults, stats, log) sits in ``replies.v1_route``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from . import control
from .config import Config
from .errors import ApiError, bad_request, not_found
from .replies import common_headers, json_reply, token_reply, v1_route
from .runtime import Ctx, FakeState
from .scenarios import ScenarioError, input_text, parse_scenario
from .sse import EventStream
from .state import TERMINAL, FakeResponse, dumps
from .tools import Turn, plain_turn, plan_turn, refused_call_id, uses_tools

_TRUE = {"true", "1", "yes"}


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _missing(param: str) -> ApiError:
    return bad_request(
        f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
    )


def _validate_create(body: dict) -> None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _missing("model")
    if "input" not in body or not isinstance(body["input"], (str, list)):
        raise _missing("input")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 16:
            raise bad_request(
                "Invalid 'metadata': expected an object with at most 16 keys.", "metadata"
            )
        for key, value in metadata.items():
            if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
                raise bad_request(
                    f"Invalid 'metadata.{key}': values must be strings of at most "
                    "512 characters, keys at most 64.",
                    "metadata",
                )
    for flag in ("background", "stream", "store"):
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise bad_request(f"Invalid type for '{flag}': expected a boolean.", flag)
    if body.get("background") and body.get("store") is False:
        raise bad_request("Background mode requires 'store' to be true.", "store")
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < 16):
        raise bad_request(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16.",
            "max_output_tokens",
            "integer_below_min_value",
        )


def _scenario_key(body: dict) -> str:
    job_id = (body.get("metadata") or {}).get("job_id")
    if job_id:
        return "job:" + job_id
    return "input:" + hashlib.sha256(dumps(body["input"])).hexdigest()


def _stream(
    fake: FakeState, ctx: Ctx, resp: FakeResponse, starting_after: int | None, obfuscate: bool
) -> EventStream:
    resp.stream_connections += 1
    first = resp.stream_connections == 1
    return EventStream(
        resp,
        starting_after=starting_after,
        obfuscate=obfuscate,
        headers=common_headers(fake, ctx),
        drop_after=resp.scenario.stream_drop_after if first else None,
    )


def _turn(fake: FakeState, body: dict, scenario) -> Turn:
    """What the fake model does in this create: a plain answer, or the next step of a tool run
    (see ``tools``); raises the 400s the API gives for a continuation it cannot follow."""
    previous_id = body.get("previous_response_id")
    previous = None
    if previous_id is not None:
        if scenario.reject_continuation == "background" and body.get("background"):
            call_id = refused_call_id(body)
            if call_id is not None:
                raise bad_request(
                    f"No tool call found for function call output with call_id {call_id}.",
                    "input",
                )
        found = fake.store.get(str(previous_id), fake.now(), fake.config.retention_seconds)
        if found is None:
            raise bad_request(
                f"Previous response with id '{previous_id}' not found.", "previous_response_id"
            )
        previous = found.conversation()
    if not uses_tools(body, scenario, previous):
        return plain_turn(input_text(body["input"]))
    try:
        return plan_turn(body, scenario, previous)
    except ScenarioError as exc:
        raise bad_request(str(exc), "metadata") from None


@v1_route("create")
async def create_response(request: Request, fake: FakeState, ctx: Ctx):
    body = await _json_body(request)
    _validate_create(body)
    background, stream = bool(body.get("background")), bool(body.get("stream"))
    ctx.job_id = (body.get("metadata") or {}).get("job_id")
    try:
        scenario = parse_scenario(body.get("metadata"), background=background)
    except ScenarioError as exc:
        raise bad_request(str(exc), "metadata") from None
    if scenario.create_errors:
        seen = fake.store.count_create(_scenario_key(body))
        if seen < len(scenario.create_errors):
            return await token_reply(
                fake, ctx, request, scenario.create_errors[seen], scenario.retry_after
            )
    turn = _turn(fake, body, scenario)
    now = fake.now()
    resp = FakeResponse(
        response_id=fake.ids.response(),
        params=body,
        turn=turn,
        scenario=scenario,
        background=background,
        streamed=stream,
        now=now,
    )
    if body.get("store") is not False:  # store=false: answered, never retrievable
        fake.store.add(resp)
        fake.scheduler.response_created(resp)
    ctx.response_id = resp.id
    if ctx.job_id is not None:
        fake.job_of[resp.id] = ctx.job_id
    if stream:
        options = body.get("stream_options") or {}
        obfuscate = options.get("include_obfuscation", True) is not False
        return _stream(fake, ctx, resp, None, obfuscate)
    if not background:  # timers may fire a hair early: sleep until the clock agrees
        while resp.status_at(fake.now()) not in TERMINAL:
            await asyncio.sleep(max(0.001, resp.end_at - fake.now()))
    return json_reply(fake, ctx, resp.body(resp.status_at(fake.now())))


def _lookup(fake: FakeState, response_id: str) -> FakeResponse:
    resp = fake.store.get(response_id, fake.now(), fake.config.retention_seconds)
    if resp is None:
        raise not_found(response_id)
    return resp


@v1_route("retrieve")
async def retrieve_response(request: Request, fake: FakeState, ctx: Ctx):
    resp = _lookup(fake, ctx.response_id)
    if resp.retrieve_errors_left:
        token = resp.retrieve_errors_left.pop(0)
        return await token_reply(fake, ctx, request, token, resp.scenario.retry_after)
    query = request.query_params if request.scope["query_string"] else {}
    if query.get("stream", "").lower() not in _TRUE:
        return json_reply(fake, ctx, resp.body(resp.status_at(fake.now())))
    ctx.route = "retrieve_stream"
    if not resp.streamed:
        raise bad_request(
            "This response was not created with stream=true, so it cannot be streamed.", "stream"
        )
    starting_after = None
    if query.get("starting_after") not in (None, ""):
        try:
            starting_after = int(query["starting_after"])
        except ValueError:
            raise bad_request(
                "Invalid 'starting_after': expected an integer.", "starting_after"
            ) from None
    obfuscate = query.get("include_obfuscation", "true").lower() != "false"
    return _stream(fake, ctx, resp, starting_after, obfuscate)


@v1_route("cancel")
async def cancel_response(request: Request, fake: FakeState, ctx: Ctx):
    resp = _lookup(fake, ctx.response_id)
    if not resp.background:
        raise bad_request(
            "Only responses created with background=true can be cancelled.", "response_id"
        )
    now = fake.now()
    if resp.status_at(now) not in TERMINAL:
        resp.cancel(now)
        fake.scheduler.response_cancelled(resp)
    return json_reply(fake, ctx, resp.body(resp.status_at(now)))


@v1_route("delete")
async def delete_response(request: Request, fake: FakeState, ctx: Ctx):
    resp = _lookup(fake, ctx.response_id)
    fake.store.delete(resp.id)
    return json_reply(
        fake, ctx, dumps({"id": resp.id, "object": "response.deleted", "deleted": True})
    )


@v1_route("unknown")
async def unknown_route(request: Request, fake: FakeState, ctx: Ctx):
    raise ApiError(
        404, f"Invalid URL ({request.method} {request.scope['path']})", code="unknown_url"
    )


def create_app(config: Config | None = None) -> Starlette:
    fake = FakeState(config or Config())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await fake.scheduler.start()
        try:
            yield
        finally:
            await fake.scheduler.stop()

    routes = [
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", retrieve_response, methods=["GET"]),
        Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
        *control.routes,
        Route("/v1/{rest:path}", unknown_route, methods=["GET", "POST", "DELETE", "PUT"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.fake = fake
    return app
