"""What Steward answers when a request fails before or around the code that serves it.

One classification for every path (pages, the API, webhooks), used by ``FailureMiddleware`` for
exceptions escaping views (whatever ``DEBUG`` says) and by Django's error handlers
(``handler400``/``handler500`` in ``config.urls``, which see failures in middleware too):

- no database connection to be had (the web process's pool stayed empty for its whole wait, or
  PostgreSQL refused or failed a new connection): 503 with ``Retry-After``, because nothing was
  changed and the same request will succeed once the burst has passed;
- a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``: 413;
- anything else Django calls suspicious (too many form fields, a bad Host): 400.

Under ``/api/`` and ``/webhooks/`` each answer is problem details; pages get a short HTML page
that needs neither templates nor the database.
"""

import logging
import sys

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse
from django.utils.html import escape
from django.views import defaults

from .bodies import too_large_detail
from .problems import is_machine_path, problem_response

try:
    from psycopg_pool import PoolTimeout
except ImportError:  # pragma: no cover - the pool is installed with psycopg[pool]
    PoolTimeout = None

log = logging.getLogger(__name__)

# Long enough for a burst to drain, short enough that a client's retry is not a real wait.
RETRY_AFTER_SECONDS = 2
UNAVAILABLE_DETAIL = (
    "Steward is serving as many requests as it can right now. Nothing was changed; "
    f"please try again in {RETRY_AFTER_SECONDS} seconds."
)


# PostgreSQL's refusals at connect time: too many connections, and starting up or shutting down.
REFUSED_AT_CONNECT = {"53300", "57P03"}


def is_database_unavailable(exc):
    """Whether ``exc`` (or what caused it) means no database connection could be had: the
    pool stayed empty for its whole wait, or PostgreSQL refused or failed a new connection.
    All happen before the request's first statement, so nothing was changed. Any other
    database error is a bug, answered 500 with its traceback logged."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if PoolTimeout is not None and isinstance(exc, PoolTimeout):
            return True
        if getattr(exc, "sqlstate", None) in REFUSED_AT_CONNECT:
            return True
        if type(exc).__module__.startswith("psycopg") and str(exc).startswith("connection failed"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _page(status, title, text):
    html = (
        f"<!doctype html><title>{escape(title)} · Steward</title>"
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
    )
    return HttpResponse(html, status=status)


def unavailable(request):
    if is_machine_path(request.path):
        response = problem_response(503, UNAVAILABLE_DETAIL)
    else:
        response = _page(503, "Steward is busy", UNAVAILABLE_DETAIL)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def too_large(request):
    detail = too_large_detail()
    if is_machine_path(request.path):
        return problem_response(413, detail)
    return _page(413, "Too much to send", f"{detail} Send less and try again.")


def failure_response(request, exc):
    """The answer for ``exc``, which no view handled; ``None`` leaves it to the caller."""
    if is_database_unavailable(exc):
        log.warning("No database connection for %s %s: %s", request.method, request.path, exc)
        return unavailable(request)
    if isinstance(exc, RequestDataTooBig):
        return too_large(request)
    if isinstance(exc, SuspiciousOperation) and is_machine_path(request.path):
        return problem_response(400, "The request is malformed.")
    return None


def bad_request(request, exception):
    """``handler400``: Django's answer to a suspicious request, unless it is one of ours."""
    return failure_response(request, exception) or defaults.bad_request(request, exception)


def server_error(request):
    """``handler500``: called while the exception is being handled, so it can be read."""
    exc = sys.exc_info()[1]
    response = failure_response(request, exc) if exc is not None else None
    if response is not None:
        return response
    if is_machine_path(request.path):
        return problem_response(
            500, "Something went wrong on our side. It was logged; please try again later."
        )
    return defaults.server_error(request)


class FailureMiddleware:
    """Answers the failures above when they escape a view, on every path."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return failure_response(request, exception)
