"""The pump (the poller in a django-q2 worker), its slot and handover; the one-job dispatch."""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from .. import services
from ..errors import JobError
from ..models import (
    ACTIVE,
    Job,
    PumpSlot,
)
from .claims import claim_due, worker_name
from .polling import process_claimed

log = logging.getLogger(__name__)


def dispatch_job(job_id, owner=None):
    """Start the next attempt of a queued job if it is due and nobody else holds it."""
    owner = owner or worker_name("dispatch")
    for job in claim_due(owner, limit=1, job_ids=[job_id]):
        process_claimed([job], owner)


def run_pump(slot=0, seconds=None, owner=None, hand_over=None, stop=None):
    """Poll and dispatch in a loop for about ``seconds``; return how many jobs were worked, or
    None if this pump never got the slot.

    Handing over without a gap: halfway through, the pump calls ``hand_over`` (the task layer
    enqueues a successor). The successor, finding the slot held, registers itself on the slot
    and waits; the running pump sees it at its next heartbeat, ends its turn and releases the
    slot, which the successor takes at once. If the task queue is slow to start the successor,
    the running pump keeps going past ``seconds`` (up to ``PUMP_MAX_SECONDS``) rather than
    leaving polling idle while its successor waits behind other tasks. Without ``hand_over``
    (tests, a one-off run) it stops after ``seconds`` and never waits for a slot. ``stop``, if
    given, is asked before every turn: true ends the run at once (its cluster is shutting
    down), and the slot is free for the next pump without waiting for it to go quiet."""
    owner = owner or worker_name(f"pump{slot}")
    seconds = settings.PUMP_RUN_SECONDS if seconds is None else seconds
    began = time.monotonic()
    if not _take_slot(slot, owner, wait=hand_over is not None):
        return None
    end = began + seconds
    last_end = began + max(seconds, settings.PUMP_MAX_SECONDS) if hand_over else end
    beat_every = min(5, settings.PUMP_STALE_SECONDS / 4)
    worked, last_beat, last_sweep, successor_called = 0, time.monotonic(), 0.0, False
    while True:
        if stop is not None and stop():
            break
        tick = time.monotonic()
        if hand_over and not successor_called and tick >= began + seconds / 2:
            successor_called = True
            try:
                hand_over()
            except Exception:  # the watchdog restarts the slot once this pump has stopped
                log.exception("pump %s could not enqueue its successor", owner)
        if tick - last_beat >= beat_every:
            beat = _beat(slot, owner)
            if beat == "lost":  # went quiet too long and another pump took the slot
                return worked
            if beat == "successor waiting":
                break
            last_beat = tick
        if tick >= last_end or (tick >= end and not hand_over):
            break
        if tick - last_sweep >= 5:
            sweep_expired()
            last_sweep = tick
        try:
            jobs = claim_due(owner, without_input=True)
            if jobs:
                process_claimed(jobs, owner)
                worked += len(jobs)
                continue
        except Exception:
            # The pump outlives a failed turn (a dropped database connection, a bug one job
            # trips): the batch's leases lapse, so its jobs are claimed again later.
            log.exception("pump %s: a turn failed; its jobs are retried after their lease", owner)
            connection.close()  # reopened by the next query
            time.sleep(1)
            continue
        time.sleep(0.1)
    PumpSlot.objects.filter(slot=slot, owner=owner).update(owner="")
    return worked


def _take_slot(slot, owner, *, wait):
    """Make ``owner`` the slot's pump. A live pump holding it is waited for if ``wait``:
    ``owner`` registers as its successor (refreshing the registration while it waits) and
    the running pump releases the slot at its next heartbeat. False if a live pump holds the
    slot and ``wait`` is off, another successor already waits, or the wait runs out."""
    quiet = timedelta(seconds=settings.PUMP_STALE_SECONDS)
    give_up = time.monotonic() + settings.PUMP_MAX_SECONDS + settings.PUMP_STALE_SECONDS
    while time.monotonic() < give_up:
        now = timezone.now()
        with transaction.atomic():
            row, _ = PumpSlot.objects.select_for_update().get_or_create(slot=slot)
            live = row.owner and row.heartbeat_at and now - row.heartbeat_at < quiet
            if not live or row.owner == owner:
                PumpSlot.objects.filter(slot=slot).update(
                    owner=owner, heartbeat_at=now, successor="", successor_at=None
                )
                return True
            rival = row.successor not in ("", owner) and now - row.successor_at < quiet
            if not wait or rival:
                return False
            PumpSlot.objects.filter(slot=slot).update(successor=owner, successor_at=now)
        time.sleep(0.2)
    return False


def _beat(slot, owner):
    """Refresh ``owner``'s heartbeat: "lost" if another pump holds the slot now, "successor
    waiting" if one registered to take over, else "ok". One conditional update, so two pumps
    can never both believe they hold the slot."""
    now = timezone.now()
    quiet = timedelta(seconds=settings.PUMP_STALE_SECONDS)
    ours = (
        Q(owner=owner)
        | Q(owner="")
        | Q(heartbeat_at__isnull=True)
        | Q(heartbeat_at__lt=now - quiet)
    )
    if not PumpSlot.objects.filter(ours, slot=slot).update(owner=owner, heartbeat_at=now):
        return "lost"
    waiting = PumpSlot.objects.filter(slot=slot, successor_at__gte=now - quiet).exclude(
        successor__in=("", owner)
    )
    return "successor waiting" if waiting.exists() else "ok"


def stale_pump_slots(now=None):
    """Slots whose pump has gone quiet (or never ran): the watchdog restarts them."""
    now = now or timezone.now()
    quiet = timedelta(seconds=settings.PUMP_STALE_SECONDS)
    alive = set(PumpSlot.objects.beating(within=quiet, now=now).values_list("slot", flat=True))
    return [slot for slot in range(settings.PUMP_SLOTS) if slot not in alive]


def sweep_expired(limit=200):
    """Expire active jobs past their deadline (in-flight provider work is cancelled), and stop
    tool runs whose approval waited past its timeout (``services.time_out_approvals``)."""
    services.time_out_approvals()
    expired = 0
    expired_jobs = Job.objects.filter(status__in=ACTIVE, expires_at__lt=timezone.now())
    for job in expired_jobs.defer("input")[:limit]:
        try:
            services.expire_job(job=job)
            expired += 1
        except JobError:
            continue
    return expired
