"""Request bodies, read in one place: bounded in size, depth and encoding before any view sees them.

Every JSON body Steward accepts (the REST API through ``BoundedJSONParser``, provider webhooks
through ``parse_json``) passes the same checks, and each refusal is a 4xx the client can act on:

- larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413 (``BodyLimitMiddleware`` refuses it from its
  ``Content-Length`` before the body is read, or as soon as a body without one grows past it);
- not UTF-8, not JSON, ``NaN``/``Infinity`` or a number too large for a float: 400;
- nested deeper than ``MAX_JSON_DEPTH`` arrays and objects: 400 (Python's parser, and everything
  that walks the value after it, recurses once per level);
- a key or string value that cannot be stored (NUL, lone surrogates; ``config.text``): 400, with
  the dotted path of each offending value in ``errors``.

This module imports no app, so the apps and the settings can all use it.
"""

import json
import math

from django.conf import settings
from django.shortcuts import render
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser

from .problems import PROBLEM_CONTENT_TYPE, is_machine_path, problem, problem_response
from .text import text_problem

# Steward's own bodies are flat (a job's input is an object of fields); 32 levels leaves room for
# provider events and future structured input while keeping every walk of a value shallow.
MAX_JSON_DEPTH = 32


class BodyRejected(Exception):
    """A body Steward will not read. ``errors`` maps dotted paths to messages, when known."""

    def __init__(self, status, detail, *, errors=None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def max_body_bytes():
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_detail():
    return f"The request body is larger than {max_body_bytes():,} bytes."


def _reject_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def parse_json(raw):
    """``raw`` bytes → the JSON value, or ``BodyRejected`` saying what is wrong with it."""
    if len(raw) > max_body_bytes():
        raise BodyRejected(413, too_large_detail())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyRejected(400, "The request body is not UTF-8 text.") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise BodyRejected(400, _too_deep()) from None
    except ValueError as exc:  # json.JSONDecodeError, and the two refusals above
        raise BodyRejected(400, f"The request body is not valid JSON: {exc}.") from None
    errors = unstorable_text(value)
    if errors:
        raise BodyRejected(
            400, "Some text in the request cannot be stored; see `errors`.", errors=errors
        )
    return value


def _too_deep():
    return f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."


def unstorable_text(value):
    """``{dotted.path: [message]}`` for every key and string in ``value`` that cannot be
    stored; raises ``BodyRejected`` past ``MAX_JSON_DEPTH``. Walks without recursion."""
    errors = {}
    stack = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                errors[path or "body"] = [problem]
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise BodyRejected(400, _too_deep())
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                problem = text_problem(key)
                if problem:
                    errors[(f"{path}.{{key}}" if path else "{key}")] = [
                        f"A field name is not usable. {problem}"
                    ]
                    continue
            stack.append((child, name, depth + 1))
    return errors


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with ``parse_json``'s bounds; every refusal is a problem response."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(max_body_bytes() + 1) if stream is not None else b""
        try:
            return parse_json(raw)
        except BodyRejected as rejected:
            if rejected.status == 413:
                raise PayloadTooLarge(rejected.detail) from None
            if rejected.errors:
                raise exceptions.ValidationError(rejected.errors) from None
            raise exceptions.ParseError(rejected.detail) from None


class BodyLimitMiddleware:
    """ASGI: a body over the limit is refused with 413 before Django reads it.

    Django's ASGI handler reads a whole body into a spooled file before any view or setting can
    look at it. This refuses a declared ``Content-Length`` over the limit at once, and cuts a
    body sent without one (chunked) as soon as it grows past the limit.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = max_body_bytes()
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse_too_large(scope, send)
        received = 0
        cut = started = False

        async def bounded_receive():
            nonlocal received, cut
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut = True
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, bounded_receive, watched_send)
        if cut and not started:
            await _refuse_too_large(scope, send)


async def _refuse_too_large(scope, send):
    if is_machine_path(scope.get("path", "")):
        body = json.dumps(problem(413, too_large_detail())).encode()
        content_type = PROBLEM_CONTENT_TYPE.encode()
    else:
        body = f"{too_large_detail()} Send less and try again.".encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class FormTextMiddleware:
    """Query strings and form posts carrying text that cannot be stored are refused with 400
    (problem details naming each parameter under ``/api/`` and ``/webhooks/``; elsewhere a page
    in the site's frame that sends the person back to their form, which the browser keeps).
    Form bodies decode with replacement characters, so only NUL can arrive this way; JSON
    bodies are checked by ``parse_json``. Installed after the authentication middleware, so the
    page knows who is signed in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        errors = self._unstorable(request.GET)
        if (
            request.method == "POST"
            and request.content_type in FORM_TYPES
            and not is_machine_path(request.path)  # the API refuses form bodies itself (415)
        ):
            errors.update(self._unstorable(request.POST))
        if errors:
            return _refuse_text(request, errors)
        return self.get_response(request)

    @staticmethod
    def _unstorable(params):
        errors = {}
        for key, values in params.lists():
            for text in (key, *values):
                problem = text_problem(text)
                if problem:
                    errors[key if text_problem(key) is None else "{key}"] = [problem]
        return errors


def _refuse_text(request, errors):
    detail = "Some text in the request cannot be stored; see `errors`."
    if is_machine_path(request.path):
        return problem_response(400, detail, slug="validation-error", errors=errors)
    context = {"problem": next(iter(errors.values()))[0], "fields": sorted(errors)}
    return render(request, "unstorable_text.html", context, status=400)


# Query parameters, read strictly: a parameter sent empty (``?status=``) is an error, not the
# same as leaving it out (DRF reads query strings as HTML forms, where it is). A comment, not a
# docstring: the API schema would show a docstring on every subclass.
class QuerySerializer(serializers.Serializer):
    def to_internal_value(self, data):
        empty = [name for name in self.fields if name in data and data.get(name) == ""]
        if empty:
            raise exceptions.ValidationError(
                {name: ["Give a value, or leave the parameter out."] for name in empty}
            )
        return super().to_internal_value(data)


# A JSON request body, read strictly: a field the endpoint does not know is an error (a
# misspelt "reasn" must not be dropped in silence). The published schema says the same
# (additionalProperties: false, config.api_schema). A comment, not a docstring: the API schema
# would show a docstring on every subclass.
class BodySerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise exceptions.ValidationError(
                    {name: ["This field is not part of the request."] for name in unknown}
                )
        return super().to_internal_value(data)


# What Python's str.strip() (and so DRF's CharField) removes: a text of only these is blank.
SPACE_CHARACTERS = (
    "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680"
    "\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
WORDS_PATTERN = f"^[^\\u0000]*[^\\u0000{SPACE_CHARACTERS}][^\\u0000]*$"


@extend_schema_field({"type": "string", "minLength": 1, "pattern": WORDS_PATTERN})
class WordsField(serializers.CharField):
    """Text that must say something: DRF trims it and refuses it blank, so the schema says it
    needs a character other than white space (and no NUL), and fuzzers and clients agree."""
