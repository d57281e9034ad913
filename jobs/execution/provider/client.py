"""SDK clients, built once per process from settings."""

import asyncio
import contextlib
import threading
from functools import cache

import httpx2 as httpx
import openai
from django.conf import settings

from .transport import LeanTransport


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
    _Pollers.generation += 1


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
    """A fresh async client (bound to the event loop it is first used in), on the wire
    ``PROVIDER_HTTP`` names: the SDK's aiohttp client (the default: 1.88 ms of CPU per retrieve
    against 3.08 ms for the SDK's httpx one, bench/RESULTS.md), Steward's lean transport
    (1.60 ms; about 5 % less cluster CPU at 10,000 in flight, not enough to prefer hand-written
    code to a maintained client), or the SDK's default."""
    extra = {}
    if settings.PROVIDER_HTTP == "lean":
        extra["http_client"] = httpx.AsyncClient(transport=LeanTransport(), follow_redirects=True)
    elif settings.PROVIDER_HTTP == "aiohttp":
        extra["http_client"] = openai.DefaultAioHttpClient()
    return openai.AsyncOpenAI(**_options(), max_retries=1, timeout=_timeout(), **extra)


class _Pollers(threading.local):
    generation = 0  # bumped by reset_clients(): every thread then builds a new pair


_pollers = _Pollers()


def poll_loop_and_client():
    """One event loop and one async client per thread, kept across poll batches.

    A new loop and client per batch cost a TLS context, fresh TCP connections and their
    teardown every batch: at thousands of retrieves a second that was a third of the pump's CPU.
    """
    state = _pollers
    if getattr(state, "built_for", None) != _Pollers.generation or state.loop.is_closed():
        close_poll_client()
        state.loop = asyncio.new_event_loop()
        state.client = async_client()
        # creates never retry inside the SDK (see ``creator``); same connection pool
        state.creator = state.client.with_options(max_retries=0)
        state.built_for = _Pollers.generation
    return state.loop, state.client


def close_poll_client():
    """Close this thread's async client on the loop it belongs to, then the loop: a thread that
    is done with them calls it (aiohttp warns about, and leaks, a session left open)."""
    state = _pollers
    loop = getattr(state, "loop", None)
    if loop is None or loop.is_closed():
        return
    with contextlib.suppress(Exception):
        loop.run_until_complete(state.client.close())
    loop.close()


def create_loop_and_client():
    """This thread's loop and its async client for creates (``max_retries=0``)."""
    loop, _ = poll_loop_and_client()
    return loop, _pollers.creator


def using_fake():
    return not settings.OPENAI_API_KEY
