"""``POST /webhooks/openai/``: verified with the SDK, checked, idempotent by event id, fast.

The endpoint answers only while ``OPENAI_WEBHOOKS_ENABLED`` is on (404 otherwise); a server
that is not in DEBUG then needs a signing secret of its own (``jobs.checks``). A delivery is
answered 400 (problem details, and a log line) when its signature does not verify,
and also when it is signed but malformed: not a JSON object, ids or types that are empty, too
long for their columns or not storable text (``provider.unwrap_webhook``). Only a checked
delivery reaches the database, and only one about a response Steward made or may have made
(``execution.receive_webhook``; the others are acknowledged and ignored). A burst of
deliveries (a provider catching up after an outage) shares the web process's bounded
connection pool like every other request (settings, ``DATABASE_POOL_SIZE``): each waits its
turn for a connection, or gets 503 and is redelivered.
"""

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.problems import problem_response

from . import execution
from .execution.provider import InvalidWebhook

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def openai_webhook(request):
    if not settings.OPENAI_WEBHOOKS_ENABLED:
        return problem_response(404, "Provider webhooks are not enabled on this server.")
    try:
        result = execution.receive_webhook(request.body, dict(request.headers))
    except InvalidWebhook as refused:
        log.warning("Refused a provider webhook: %s", refused)
        return problem_response(400, str(refused), slug="invalid-webhook", title="Invalid webhook")
    return JsonResponse({"result": result}, status=200)
