"""Shared REST API plumbing: RFC 9457 problem details, throttles, pagination.

(The schema helpers are in ``config/api_schema.py``: this module is imported while DRF itself
loads, through the settings, so it must not import ``rest_framework.views``. It imports no app
either: each app's domain errors say how they are answered (``config.problems.DomainError``).)

Every 4xx/5xx under ``/api/`` is ``application/problem+json``::

    {"type": "urn:steward:problem:validation-error", "title": "Invalid request",
     "status": 400, "detail": "…", "errors": {"input.title": ["This field is required."]}}

DRF exceptions and every app's domain errors are mapped by ``problem_exception_handler``;
anything that escapes a view (an unhandled exception, a URL that matches nothing, Django's own
405) is turned into a problem by ``ApiProblemMiddleware``, so a client never has to parse an
HTML error page.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import Http404
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .problems import (
    HTTP_PROBLEMS,
    PROBLEM_CONTENT_TYPE,
    DomainError,
    problem,
    problem_response,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def flatten_errors(detail, prefix=""):
    """DRF's nested error detail → ``{"field.sub": ["message", …]}``."""
    if isinstance(detail, dict):
        flat = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def _set_rollback():
    for db in connections.all(initialized_only=True):
        if db.settings_dict["ATOMIC_REQUESTS"] and db.in_atomic_block:
            db.set_rollback(True)


def problem_exception_handler(exc, context):
    """DRF's exception handler: every API error becomes problem details."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*(exc.args or ("Not found.",)))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, DomainError):  # every app's: each class names its status and type
        _set_rollback()
        return Response(exc.as_problem(), status=exc.status, content_type=PROBLEM_CONTENT_TYPE)
    if not isinstance(exc, exceptions.APIException):
        return None  # ApiProblemMiddleware answers the 500
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(int(exc.wait + 0.999), 1))
    if isinstance(exc, exceptions.ValidationError):
        body = problem(
            exc.status_code,
            "The request is not valid; see `errors` for each field.",
            slug="validation-error",
            title="Invalid request",
            errors=flatten_errors(exc.detail),
        )
    else:
        detail = exc.detail if isinstance(exc.detail, str) else flatten_errors(exc.detail)
        body = problem(exc.status_code, detail)
    _set_rollback()
    return Response(
        body, status=exc.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE
    )


class ApiProblemMiddleware:
    """Under ``/api/``: unhandled exceptions and non-DRF error pages become problem details.

    Covers what DRF never sees: URLs that match no route, Django's own 404/405 pages and
    exceptions a view did not expect (logged, then a 500 problem without internals; the ones
    ``config.failures.FailureMiddleware`` answers first, such as no database connection free,
    never reach it).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            status = response.status_code
            replaced = problem_response(status, _plain_detail(status, request))
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, Http404):
            return problem_response(404, "Nothing is here.")
        if isinstance(exception, PermissionDenied):
            return problem_response(403, "You may not do this.")
        log.error("Unhandled error in %s %s", request.method, request.path, exc_info=exception)
        return problem_response(
            500, "Something went wrong on our side. It was logged; please try again later."
        )


def _plain_detail(status, request):
    if status == 404:
        return f"There is no API endpoint at {request.path}."
    if status == 405:
        return f"{request.method} is not allowed here."
    return HTTP_PROBLEMS.get(status, ("", "The request failed."))[1] + "."


# --- throttling -----------------------------------------------------------------------------


class _LiveRateThrottle(SimpleRateThrottle):
    """Reads its rate from settings on every request (DRF caches it at import time), so the
    rates in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` can change without a restart."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_LiveRateThrottle):
    """All of one user's API requests, whichever token or session they come with."""

    scope = "user"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class TokenThrottle(_LiveRateThrottle):
    """One API token's requests, so one runaway script can't use up its user's whole budget."""

    scope = "token"

    def get_cache_key(self, request, view):
        if getattr(request.auth, "pk", None) is None:  # a session, not an API token
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


# --- pagination -----------------------------------------------------------------------------


class JobCursorPagination(CursorPagination):
    """Newest first; the cursor is opaque and stable while new jobs arrive.

    A cursor is checked before it reaches the database: one that does not decode, or whose
    position is not a time, is 400 (DRF answers 404 for the first and lets the second fail in
    the query)."""

    ordering = "-created_at"
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            cursor = None
            valid = False
        else:
            valid = cursor is None or cursor.position is None or _is_time(cursor.position)
        if not valid:
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["This cursor is not one Steward gave out."]}
            )
        return cursor


def _is_time(text):
    try:
        return parse_datetime(text) is not None
    except ValueError:
        return False
