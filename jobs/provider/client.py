"""SDK clients, built once per process from settings."""

from functools import cache

import openai
from django.conf import settings


def _options():
    return {
        # The SDK insists on a key; the fake accepts any.
        "api_key": settings.OPENAI_API_KEY or "steward-fake-key",
        "base_url": settings.OPENAI_BASE_URL or None,
        "webhook_secret": settings.OPENAI_WEBHOOK_SECRET or None,
    }


def _timeout():
    return openai.Timeout(settings.PROVIDER_TIMEOUT, connect=min(5.0, settings.PROVIDER_TIMEOUT))


def reset_clients():
    """Forget cached clients (after settings change, e.g. in tests)."""
    sync_client.cache_clear()
    creator.cache_clear()


@cache
def sync_client():
    """Retrieves and cancels keep the SDK's own retries; creates never do (see ``creator``)."""
    return openai.OpenAI(**_options(), max_retries=2, timeout=_timeout())


@cache
def creator():
    """``max_retries=0``: the SDK sends no idempotency key on create, so a silent retry after a
    timeout could start a second billed response. Every retry is a visible Steward attempt."""
    return openai.OpenAI(**_options(), max_retries=0, timeout=_timeout())


def async_client():
    """A fresh async client per event loop (the poller runs one loop per batch)."""
    return openai.AsyncOpenAI(**_options(), max_retries=1, timeout=_timeout())


def using_fake():
    return not settings.OPENAI_API_KEY
