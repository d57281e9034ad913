"""``POST /webhooks/openai/``: verified with the SDK, idempotent by event id, fast.

A provider delivering a backlog (after an outage, or when Steward's web server comes back)
sends hundreds of webhooks at once. Django's ASGI handler runs each request in a thread of its
own, and each thread opens its own database connection, so such a burst used to exceed
PostgreSQL's connection limit and fail with 500s (bench/RESULTS.md, P1 with webhooks). Here
at most ``OPENAI_WEBHOOK_CONCURRENCY`` deliveries per process are recorded at once, each
closing its connection when done; the rest wait their turn (a few milliseconds each) without
one."""

import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import execution
from .provider.adapter import InvalidWebhook

_turns = threading.BoundedSemaphore(settings.OPENAI_WEBHOOK_CONCURRENCY)


@csrf_exempt
@require_POST
def openai_webhook(request):
    with _turns:
        try:
            result = execution.receive_webhook(request.body, dict(request.headers))
        except InvalidWebhook:
            return JsonResponse({"error": "invalid webhook signature"}, status=400)
        finally:
            _hand_back_connection()
    return JsonResponse({"result": result}, status=200)


def _hand_back_connection():
    """Close this thread's connection (unless it is persistent, or a test's transaction holds
    it) before the next delivery's turn."""
    if not connection.in_atomic_block:
        close_old_connections()
