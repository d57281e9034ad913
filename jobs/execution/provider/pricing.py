"""Cost of an attempt from its token usage and the price table in settings."""

from decimal import Decimal

from django.conf import settings

MILLION = Decimal(1_000_000)


def cost_of(model, *, input_tokens, cached_tokens, output_tokens):
    """US dollars. Cached tokens are part of ``input_tokens`` and billed at the cached rate;
    reasoning tokens are already inside ``output_tokens`` and are not added again."""
    prices = settings.PRICE_TABLE.get(model) or _by_prefix(model)
    if prices is None:
        return Decimal(0)
    p_in, p_cached, p_out = prices
    uncached = max(input_tokens - cached_tokens, 0)
    return (uncached * p_in + cached_tokens * p_cached + output_tokens * p_out) / MILLION


def _by_prefix(model):
    """Snapshots such as ``gpt-5-mini-2025-08-07`` price like their family name."""
    matches = [name for name in settings.PRICE_TABLE if model.startswith(name)]
    return settings.PRICE_TABLE[max(matches, key=len)] if matches else None
