"""RFC 9457 problem details: the body of every error under ``/api/`` and ``/webhooks/``, and the
answers Steward gives when a request cannot be served at all (too large, or no database
connection free). Imports no app, so request plumbing anywhere can use it."""

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Paths whose clients are programs: errors there are problem details, never HTML pages.
MACHINE_PREFIXES = ("/api/", "/webhooks/")

# status → (type slug, title) for problems that carry no more specific meaning.
HTTP_PROBLEMS = {
    400: ("bad-request", "Bad request"),
    401: ("not-authenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("unprocessable", "Unprocessable request"),
    429: ("throttled", "Too many requests"),
    500: ("server-error", "Server error"),
    503: ("unavailable", "Service unavailable"),
}


def problem_type(slug):
    return f"urn:steward:problem:{slug}"


def problem(status, detail, *, slug=None, title=None, errors=None):
    """The body of one problem (RFC 9457)."""
    default_slug, default_title = HTTP_PROBLEMS.get(status, ("error", "Error"))
    body = {
        "type": problem_type(slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": str(detail),
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(status, detail, **kwargs):
    return JsonResponse(
        problem(status, detail, **kwargs), status=status, content_type=PROBLEM_CONTENT_TYPE
    )


def is_machine_path(path):
    return path.startswith(MACHINE_PREFIXES)


class DomainError(Exception):
    """Base of every app's domain errors (``jobs.errors``, ``review.errors``). ``message`` is
    written for the person who tried the action; the class says how the API answers it, so the
    API plumbing maps every app's errors without importing any app:

    - ``status``: the HTTP status (409 unless the class says otherwise);
    - ``problem_slug`` / ``problem_title``: the problem type and title (by default the class
      name in kebab case, and the status's title);
    - ``problem_errors()``: field → messages, for errors about particular fields.
    """

    status = 409
    problem_slug = None
    problem_title = None

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def problem_errors(self):
        return None

    def as_problem(self):
        slug = self.problem_slug or "".join(
            f"-{c.lower()}" if c.isupper() else c for c in type(self).__name__
        ).lstrip("-")
        return problem(
            self.status,
            self.message,
            slug=slug,
            title=self.problem_title,
            errors=self.problem_errors(),
        )
