"""The provider circuit breaker.

Every provider call is counted into ten-second buckets (one upsert per batch, not per call).
When the last minute holds at least ``CIRCUIT_MIN_CALLS`` calls and the error share crosses
``CIRCUIT_ERROR_RATE``, the circuit opens: new background dispatch waits (jobs stay queued
with a visible reason) while polling of in-flight work continues. When the open window ends
the circuit is half-open: a few probe dispatches go through (the dispatcher takes high-priority
jobs first); a success closes it, a failure opens it again for twice as long (capped).
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Func, IntegerField, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..models import CircuitState, ProviderCallWindow

WINDOW = timedelta(seconds=60)
PROBES = 3
MAX_OPEN_SECONDS = 300


def _bucket(now):
    return now.replace(second=now.second - now.second % 10, microsecond=0)


def _row():
    row, _ = CircuitState.objects.get_or_create(pk=1)
    return row


def record(*, ok=0, failed=0, rate_limited=0, now=None):
    """Count provider call results, then open, close or keep the circuit accordingly."""
    if not (ok or failed):
        return
    now = now or timezone.now()
    bucket = _bucket(now)
    counts = dict(
        ok=F("ok") + ok, failed=F("failed") + failed, rate_limited=F("rate_limited") + rate_limited
    )
    if not ProviderCallWindow.objects.filter(bucket=bucket).update(**counts):
        try:
            with transaction.atomic():
                ProviderCallWindow.objects.create(
                    bucket=bucket, ok=ok, failed=failed, rate_limited=rate_limited
                )
        except IntegrityError:
            ProviderCallWindow.objects.filter(bucket=bucket).update(**counts)
    _reconsider(now, probe_failed=bool(failed) and not ok, probe_ok=bool(ok) and not failed)


def recent(now=None):
    now = now or timezone.now()
    totals = ProviderCallWindow.objects.filter(bucket__gte=now - WINDOW).aggregate(
        ok=Sum("ok"), failed=Sum("failed"), rate_limited=Sum("rate_limited")
    )
    return {key: value or 0 for key, value in totals.items()}


def _reconsider(now, *, probe_failed, probe_ok):
    row = _row()
    if row.state == CircuitState.State.OPEN and row.opened_until and row.opened_until <= now:
        # half-open: the result of a probe decides
        if probe_ok:
            _close(row)
        elif probe_failed:
            _open(
                row,
                now,
                seconds=min(row.open_seconds * 2, MAX_OPEN_SECONDS),
                reason="The provider still fails; waiting longer.",
            )
        return
    if row.state == CircuitState.State.OPEN:
        return
    stats = recent(now)
    calls = stats["ok"] + stats["failed"]
    if (
        calls >= settings.CIRCUIT_MIN_CALLS
        and stats["failed"] / calls >= settings.CIRCUIT_ERROR_RATE
    ):
        _open(
            row,
            now,
            seconds=30,
            reason=(f"{stats['failed']} of the last {calls} provider calls failed."),
        )


def _open(row, now, *, seconds, reason):
    CircuitState.objects.filter(pk=row.pk).update(
        state=CircuitState.State.OPEN,
        opened_until=now + timedelta(seconds=seconds),
        open_seconds=seconds,
        probes_left=PROBES,
        reason=reason,
        changed_at=now,
    )


def _close(row):
    CircuitState.objects.filter(pk=row.pk).update(
        state=CircuitState.State.CLOSED,
        opened_until=None,
        open_seconds=30,
        probes_left=0,
        reason="",
        changed_at=timezone.now(),
    )


def state(now=None):
    """``closed``, ``open`` or ``half_open`` — readable by the ops page."""
    now = now or timezone.now()
    row = _row()
    if row.state == CircuitState.State.CLOSED:
        return "closed"
    return "open" if row.opened_until and row.opened_until > now else "half_open"


def health(now=None):
    """The state (as ``state`` says it) and the last minute's call counts, in one query: the
    circuit row with the window's sums as subqueries (the ops page reads this)."""
    now = now or timezone.now()
    window = ProviderCallWindow.objects.filter(bucket__gte=now - WINDOW).order_by()

    def total(field):  # SUM over the whole window, as a scalar subquery
        summed = window.annotate(total=Func(F(field), function="SUM")).values("total")
        return Coalesce(Subquery(summed, output_field=IntegerField()), 0)

    counts = ("ok", "failed", "rate_limited")
    row = (
        CircuitState.objects.filter(pk=1)
        .annotate(**{f"calls_{name}": total(name) for name in counts})
        .first()
    )
    if row is None:  # the first look ever: create the row, then read again
        _row()
        return health(now)
    current = "closed"
    if row.state != CircuitState.State.CLOSED:
        current = "open" if row.opened_until and row.opened_until > now else "half_open"
    return {"state": current} | {name: getattr(row, f"calls_{name}") for name in counts}


def allows_dispatch(now=None):
    """May one more new background dispatch go out now? Half-open spends one probe."""
    now = now or timezone.now()
    current = state(now)
    if current == "closed":
        return True
    if current == "open":
        return False
    return bool(
        CircuitState.objects.filter(pk=1, probes_left__gt=0).update(
            probes_left=F("probes_left") - 1
        )
    )


def reopens_at():
    return _row().opened_until
