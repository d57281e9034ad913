"""Create, retrieve, cancel and stream responses; translate results and errors into product terms.

Provider statuses map to product ones here and nowhere else: ``queued`` → waiting (the job stays
queued), ``in_progress`` → working (running), ``completed`` / ``failed`` / ``incomplete`` /
``cancelled`` → an ``AttemptOutcome``. Errors become ``ProviderError`` with a failure kind:
``input`` for 400/422, ``provider`` for 429/5xx/connection trouble (retryable, honouring
Retry-After), ``policy`` for refusals and content filtering, ``timeout`` for timeouts.
"""

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import openai
from django.conf import settings

from config.bodies import BodyRejected, parse_json
from config.text import storable, storable_json

from ...results import AttemptOutcome, Citation, RequestedCall, Usage
from .client import create_loop_and_client, creator, poll_loop_and_client, sync_client, using_fake
from .pricing import cost_of

TERMINAL = {"completed", "failed", "incomplete", "cancelled"}
# failed-response codes (not HTTP errors) that a new attempt may fix
TRANSIENT_CODES = {"server_error", "rate_limit_exceeded", "vector_store_timeout"}
POLICY_CODES = {"bio_policy", "misalignment_policy_violation", "image_content_policy_violation"}
FAKE_DIRECTIVE = re.compile(r"\[fake:([^\]]+)\]")


class ProviderError(Exception):
    """A provider call failed; ``message`` is written for the job's submitter."""

    def __init__(
        self,
        *,
        kind,
        retryable,
        message,
        code="",
        status_code=None,
        retry_after=None,
        request_id="",
    ):
        super().__init__(message)
        self.kind, self.retryable, self.message = kind, retryable, message
        self.code, self.status_code = code or "", status_code
        self.retry_after, self.request_id = retry_after, request_id or ""

    @property
    def is_gone(self):
        return self.status_code == 404


@dataclass(frozen=True)
class Dispatch:
    response_id: str
    provider_status: str
    request_id: str


@dataclass(frozen=True)
class Snapshot:
    """One retrieve: still waiting, working, or finished with an outcome."""

    response_id: str
    provider_status: str
    outcome: AttemptOutcome | None = None
    metadata: dict | None = None

    @property
    def is_working(self):
        return self.provider_status == "in_progress"


@dataclass(frozen=True)
class StreamChunk:
    """One stream event in product terms: ``created``, ``working``, ``text`` or ``finished``."""

    kind: str
    sequence: int
    response_id: str = ""
    text: str = ""
    outcome: AttemptOutcome | None = None


# --- errors --------------------------------------------------------------------------------


def _retry_after(headers):
    if headers is None:
        return None
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            return float(raw) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def classify(exc):
    """Map an SDK exception to a ``ProviderError`` with a failure kind."""
    request_id = getattr(exc, "request_id", "") or ""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            kind="timeout",
            retryable=True,
            code="timeout",
            message="The AI provider did not answer in time.",
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(
            kind="provider",
            retryable=True,
            code="connection_error",
            message="Steward could not reach the AI provider.",
        )
    if isinstance(exc, openai.APIStatusError):
        status, code = exc.status_code, (exc.code or "")
        retry_after = _retry_after(exc.response.headers if exc.response is not None else None)
        common = {
            "code": code or str(status),
            "status_code": status,
            "request_id": request_id,
            "retry_after": retry_after,
        }
        if status == 429 and code == "insufficient_quota":
            return ProviderError(
                kind="provider",
                retryable=False,
                **common,
                message=(
                    "The AI provider account has no credit left; an administrator needs to act."
                ),
            )
        if status == 429:
            return ProviderError(
                kind="provider",
                retryable=True,
                **common,
                message=("The AI provider is busy and asked Steward to slow down."),
            )
        if status in (400, 422):
            return ProviderError(
                kind="input",
                retryable=False,
                **common,
                message=(
                    "The AI provider could not accept this input. Check the input and submit again."
                ),
            )
        if status in (401, 403):
            return ProviderError(
                kind="provider",
                retryable=False,
                **common,
                message=(
                    "Steward is not allowed to use the AI provider; an administrator needs to act."
                ),
            )
        if status == 404:
            return ProviderError(
                kind="provider",
                retryable=False,
                **common,
                message=(
                    "The result is no longer available at the AI provider (it keeps results only "
                    "for a short time)."
                ),
            )
        return ProviderError(
            kind="provider",
            retryable=True,
            **common,
            message=("The AI provider had a temporary problem."),
        )
    if isinstance(exc, json.JSONDecodeError | openai.APIResponseValidationError):
        return ProviderError(
            kind="provider",
            retryable=True,
            code="bad_response",
            message="The AI provider sent an unreadable answer.",
        )
    raise exc


def outcome_from_error(error: ProviderError) -> AttemptOutcome:
    return AttemptOutcome(
        status="failed",
        failure_kind=error.kind,
        retryable=error.retryable,
        error_code=error.code,
        error_message=error.message,
        retry_after=error.retry_after,
        request_id=error.request_id,
    )


# --- results -------------------------------------------------------------------------------


def _usage(response):
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage(price_version=settings.PRICE_TABLE_VERSION)
    cached = getattr(usage.input_tokens_details, "cached_tokens", 0) or 0
    reasoning = getattr(usage.output_tokens_details, "reasoning_tokens", 0) or 0
    return Usage(
        input_tokens=usage.input_tokens,
        cached_tokens=cached,
        output_tokens=usage.output_tokens,
        reasoning_tokens=reasoning,
        price_version=settings.PRICE_TABLE_VERSION,
        cost=cost_of(
            response.model or "",
            input_tokens=usage.input_tokens,
            cached_tokens=cached,
            output_tokens=usage.output_tokens,
        ),
    )


def _worked(response):
    """Seconds the provider spent on a completed response, from its own ``created_at`` and
    ``completed_at`` (whole seconds from the real API): what the poll pacing learns from."""
    created, completed = response.created_at, getattr(response, "completed_at", None)
    if not created or not completed or completed < created:
        return None
    return float(completed - created)


def _outcome(response, request_id=""):
    status = response.status
    common = dict(
        # The model's words are stored as they came, but for what no database can hold (NUL,
        # lone surrogates: config.text); the provider's own fields are bounded to their columns.
        text=storable(response.output_text or ""),
        usage=_usage(response),
        provider_status=status,
        model=(response.model or "")[:64],
        service_tier=(response.service_tier or "")[:20],
        request_id=request_id,
        output=storable_json([item.model_dump(mode="json") for item in response.output]),
    )
    if status == "completed":
        calls = tuple(
            RequestedCall(item.call_id, item.name, item.arguments)
            for item in response.output
            if item.type == "function_call"
        )
        return AttemptOutcome(
            status="completed",
            provider_seconds=_worked(response),
            tool_calls=calls,
            citations=_citations(response),
            searches=_searches(response),
            **common,
        )
    if status == "incomplete":
        reason = (getattr(response.incomplete_details, "reason", "") or "")[:64]
        return AttemptOutcome(status="incomplete", error_code=reason, **common)
    if status == "cancelled":
        return AttemptOutcome(
            status="failed",
            failure_kind="provider",
            retryable=False,
            error_code="cancelled",
            error_message="The work was stopped at the AI provider.",
            **common,
        )
    code = (getattr(response.error, "code", "") or "")[:64]
    if code in TRANSIENT_CODES:
        kind, retryable = "provider", True
        message = "The AI provider had a temporary problem while working on it."
    elif code in POLICY_CODES:
        kind, retryable = "policy", False
        message = "The AI provider declined this request under its usage policy."
    else:
        kind, retryable = "input", False
        message = "The AI provider could not work with this input."
    return AttemptOutcome(
        status="failed",
        failure_kind=kind,
        retryable=retryable,
        error_code=code,
        error_message=message,
        **common,
    )


def _citations(response):
    """The ``url_citation`` annotations of the answer, with offsets into ``output_text`` (the
    SDK joins the message's text parts in order, so later parts are shifted by the earlier)."""
    found, offset = [], 0
    for item in response.output:
        if item.type != "message":
            continue
        for part in item.content:
            if part.type != "output_text":
                continue
            for note in part.annotations or ():
                if note.type == "url_citation":
                    found.append(
                        Citation(
                            url=storable(note.url)[:2000],
                            title=storable(note.title or "")[:300],
                            start=offset + note.start_index,
                            end=offset + note.end_index,
                        )
                    )
            offset += len(part.text)
    return tuple(found)


def _searches(response):
    queries = []
    for item in response.output:
        if item.type == "web_search_call":
            query = getattr(getattr(item, "action", None), "query", None)
            if query:
                queries.append(storable(query)[:500])
    return tuple(queries)


def _snapshot(response, request_id=""):
    outcome = _outcome(response, request_id) if response.status in TERMINAL else None
    return Snapshot(
        response_id=response.id,
        provider_status=response.status,
        outcome=outcome,
        metadata=dict(response.metadata or {}),
    )


# --- calls ---------------------------------------------------------------------------------


def _metadata(job_id, attempt_number, text):
    metadata = {"job_id": str(job_id), "attempt": str(attempt_number)}
    if using_fake():
        # The bundled fake reads scenario knobs from metadata; demo defaults come from settings,
        # and a ``[fake:key=value;…]`` directive in the input picks a scenario per job.
        metadata.update(settings.FAKE_OPENAI_DEFAULTS)
        for directive in FAKE_DIRECTIVE.findall(text):
            for pair in directive.split(";"):
                key, _, value = pair.partition("=")
                if key.strip() and value.strip():
                    metadata[f"fake_{key.strip()}"] = value.strip()
    return metadata


def _create_args(
    *,
    job_id,
    attempt_number,
    model,
    instructions,
    max_output_tokens=None,
    tools=None,
    history=None,
):
    """``history``: input items that follow the instructions (the finished steps of a tool run
    that an earlier attempt got through, so a retry does not run their calls again)."""
    args = dict(
        model=model,
        input=[{"role": "user", "content": instructions}, *history] if history else instructions,
        background=True,
        store=True,
        metadata=_metadata(job_id, attempt_number, instructions),
    )
    if max_output_tokens:
        args["max_output_tokens"] = max_output_tokens
    if tools:
        args["tools"] = list(tools)
    return args


def create_response(*, job_id, attempt_number, model, instructions, tools=None, history=None):
    """Start a background response (with ``tools``: the ``FunctionTool`` dicts the model may
    call). Raises ``ProviderError``; never retried by the SDK."""
    try:
        response = creator().responses.create(
            **_create_args(
                job_id=job_id,
                attempt_number=attempt_number,
                model=model,
                instructions=instructions,
                tools=tools,
                history=history,
            )
        )
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise classify(exc) from exc
    return _accepted(response)


class ContinuationRefused(Exception):
    """The provider would not continue from ``previous_response_id`` (some refuse it for
    background responses: "No tool call found for function call output ..."); the caller
    replays the whole conversation instead."""


def continue_response(*, job_id, attempt_number, step, model, instructions, tools, previous, items):
    """Continue a tool run: a background response that carries ``items`` (the calls'
    ``function_call_output`` items) after ``previous``. With ``previous=None``, ``items`` is
    the whole conversation after ``instructions`` (a replay). ``step`` goes into the metadata,
    so an unrecorded create can be matched to its step. Raises ``ContinuationRefused`` or
    ``ProviderError``; never retried by the SDK."""
    args = _create_args(
        job_id=job_id,
        attempt_number=attempt_number,
        model=model,
        instructions=instructions,
        tools=tools,
    )
    args["metadata"]["step"] = str(step)
    if previous:
        args.update(previous_response_id=previous, input=list(items))
    else:
        args["input"] = [{"role": "user", "content": instructions}, *items]
    try:
        response = creator().responses.create(**args)
    except openai.BadRequestError as exc:
        if previous and "no tool call found" in str(exc).lower():
            raise ContinuationRefused(str(exc)) from exc
        raise classify(exc) from exc
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise classify(exc) from exc
    return _accepted(response)


def _accepted(response):
    return Dispatch(response.id, response.status, getattr(response, "_request_id", "") or "")


async def _create_all(client, requests, concurrency):
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request):
        async with semaphore:
            try:
                response = await client.responses.create(**_create_args(**request))
            except (openai.OpenAIError, json.JSONDecodeError) as exc:
                return classify(exc)
            return _accepted(response)

    return await asyncio.gather(*(one(request) for request in requests))


def create_many(requests, *, concurrency=16):
    """Start several background responses at once; ``requests`` are ``create_response``'s
    keyword arguments. Returns a ``Dispatch`` or a ``ProviderError`` for each, in order. Like
    ``create_response``, nothing is retried by the SDK."""
    if not requests:
        return []
    loop, client = create_loop_and_client()
    return loop.run_until_complete(_create_all(client, list(requests), concurrency))


def run_foreground(*, job_id, attempt_number, model, instructions, timeout):
    """The sync lane: one plain request answered within ``timeout`` seconds."""
    args = _create_args(
        job_id=job_id, attempt_number=attempt_number, model=model, instructions=instructions
    )
    args.update(background=False)
    try:
        response = creator().responses.create(**args, timeout=timeout)
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise classify(exc) from exc
    return _snapshot(response, getattr(response, "_request_id", "") or "")


async def _retrieve_one(client, response_id):
    """Non-terminal answers need only their status: read it from the raw JSON and build the
    full SDK model (several times dearer) only for terminal or unexpected bodies."""
    raw = await client.responses.with_raw_response.retrieve(response_id)
    request_id = raw.http_response.headers.get("x-request-id", "")
    data = json.loads(raw.http_response.content)
    status = data.get("status") if isinstance(data, dict) else None
    if status in ("queued", "in_progress") and data.get("id") == response_id:
        return Snapshot(response_id, status, None, dict(data.get("metadata") or {}))
    return _snapshot(raw.parse(), request_id)


async def _retrieve_all(client, response_ids, concurrency):
    semaphore = asyncio.Semaphore(concurrency)

    async def one(response_id):
        async with semaphore:
            try:
                return response_id, await _retrieve_one(client, response_id)
            except (openai.OpenAIError, json.JSONDecodeError) as exc:
                return response_id, classify(exc)

    return dict(await asyncio.gather(*(one(rid) for rid in response_ids)))


def retrieve_many(response_ids, *, concurrency=16):
    """Retrieve many responses concurrently: ``{response_id: Snapshot | ProviderError}``.

    Runs on this thread's long-lived loop and client, so connections are reused across batches;
    16 at a time keeps the connection pool's per-request bookkeeping small.
    """
    if not response_ids:
        return {}
    loop, client = poll_loop_and_client()
    return loop.run_until_complete(_retrieve_all(client, list(response_ids), concurrency))


def cancel_response(response_id):
    """Best-effort cancel; returns the provider status afterwards (or raises ProviderError)."""
    try:
        return sync_client().responses.cancel(response_id).status
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise classify(exc) from exc


def stream_response(
    *,
    job_id=None,
    attempt_number=None,
    model=None,
    instructions=None,
    response_id=None,
    starting_after=None,
) -> Iterator[StreamChunk]:
    """Start a streaming background response, or resume one after ``starting_after``.

    Yields ``StreamChunk``s with the provider's sequence numbers. A dropped connection raises
    ``ProviderError`` (retryable); the caller resumes from the last sequence it stored.
    """
    try:
        if response_id is None:
            stream = creator().responses.create(
                **_create_args(
                    job_id=job_id,
                    attempt_number=attempt_number,
                    model=model,
                    instructions=instructions,
                ),
                stream=True,
            )
        else:
            extra = {} if starting_after is None else {"starting_after": starting_after}
            stream = sync_client().responses.retrieve(response_id, stream=True, **extra)
        with stream:
            for event in stream:
                chunk = _chunk(event)
                if chunk is not None:
                    yield chunk
    except (openai.OpenAIError, json.JSONDecodeError) as exc:
        raise classify(exc) from exc


def _chunk(event):
    kind, seq = event.type, event.sequence_number
    if kind == "response.created":
        return StreamChunk("created", seq, response_id=event.response.id)
    if kind == "response.in_progress":
        return StreamChunk("working", seq, response_id=event.response.id)
    if kind == "response.output_text.delta":
        return StreamChunk("text", seq, text=storable(event.delta))
    if kind in ("response.completed", "response.failed", "response.incomplete"):
        return StreamChunk(
            "finished", seq, response_id=event.response.id, outcome=_outcome(event.response)
        )
    if kind == "error":
        raise ProviderError(
            kind="provider",
            retryable=True,
            code=event.code or "stream_error",
            message="The AI provider reported an error while streaming.",
        )
    return StreamChunk("other", seq)


# --- webhooks ------------------------------------------------------------------------------


class InvalidWebhook(ValueError):
    """A delivery Steward will not act on: its signature does not verify, or it is signed but
    malformed. The message says which, for the log."""


# Longest ids and type Steward stores (WebhookReceipt's columns).
WEBHOOK_EVENT_ID_MAX, WEBHOOK_TYPE_MAX, WEBHOOK_RESPONSE_ID_MAX = 100, 60, 80


def unwrap_webhook(body, headers):
    """Verify a provider webhook with the SDK, then check its event before anything is stored;
    return ``(event_id, event_type, response_id)`` (``response_id`` is ``""`` for events that
    are not about a response)."""
    try:
        sync_client().webhooks.verify_signature(body, headers)
    except ValueError as exc:  # InvalidWebhookSignatureError is a ValueError too
        raise InvalidWebhook(f"invalid webhook signature: {exc}") from exc
    try:
        event = parse_json(body)
    except BodyRejected as rejected:
        raise InvalidWebhook(f"signed but malformed: {rejected.detail}") from None
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict):
        raise InvalidWebhook("signed but malformed: not an event object with `data`")
    event_id = _webhook_text(event, "id", WEBHOOK_EVENT_ID_MAX)
    event_type = _webhook_text(event, "type", WEBHOOK_TYPE_MAX)
    is_response_event = event_type.startswith("response.")
    response_id = _webhook_text(data, "id", WEBHOOK_RESPONSE_ID_MAX, required=is_response_event)
    return event_id, event_type, response_id if is_response_event else ""


def _webhook_text(obj, key, longest, *, required=True):
    value = obj.get(key, "")
    if not isinstance(value, str) or (required and not value) or len(value) > longest:
        raise InvalidWebhook(
            f"signed but malformed: `{key}` must be text of 1 to {longest} characters"
        )
    return value
