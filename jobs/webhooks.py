"""``POST /webhooks/openai/``: verified with the SDK, idempotent by event id, fast."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import execution
from .provider.adapter import InvalidWebhook


@csrf_exempt
@require_POST
def openai_webhook(request):
    try:
        result = execution.receive_webhook(request.body, dict(request.headers))
    except InvalidWebhook:
        return JsonResponse({"error": "invalid webhook signature"}, status=400)
    return JsonResponse({"result": result}, status=200)
