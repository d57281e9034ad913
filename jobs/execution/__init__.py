"""The provider lanes: dispatch, the poller, streaming, the sync lane, cancel and expiry.

How due jobs get looked at within about a second, although django-q2 schedules are
minute-grained: a *pump* task (``run_pump``) loops inside one django-q2 worker for
``PUMP_RUN_SECONDS``. Each turn it claims a batch of due jobs (``next_poll_at <= now`` and no
live lease) with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, or an atomic lease update
inside SQLite's IMMEDIATE transaction elsewhere; dispatches the queued ones; retrieves the
in-flight ones concurrently (async SDK, one event loop per batch); applies the results through
the services; and writes each job's next poll time with backoff. When nothing is due it sleeps
a fraction of a second, so no worker ever sleeps on one job and one worker tracks thousands.
Halfway through, a pump enqueues its successor and keeps polling until the successor starts
and takes the slot over; a once-a-minute watchdog schedule restarts any pump slot whose
heartbeat went quiet (a SIGKILLed worker). Leases expire, so jobs claimed by a
killed worker become due again for another. ``PUMP_SLOTS`` sets how many pumps run at once
across all clusters. Webhooks only make a job due now; polling stays the safety net.

The package: ``claims`` (leases), ``pacing`` (when to look next: the backoff and the first look
learned per job type), ``dispatch`` (starting a batch's attempts),
``polling`` (working a claimed batch), ``pump`` (the loop, its slot and handover, and the
one-job dispatch task) and ``lanes`` (stream, sync, cancel, webhooks, orphans).
"""

from .claims import (
    claim_due,
    worker_name,
)
from .lanes import (
    adopt_orphan,
    cancel_at_provider,
    receive_webhook,
    run_sync,
    stream_job,
    submit_and_start,
)
from .pacing import (
    first_look,
    next_look,
    poll_interval,
)
from .polling import (
    poll,
    process_claimed,
)
from .pump import (
    dispatch_job,
    run_pump,
    stale_pump_slots,
    sweep_expired,
)

__all__ = [
    "worker_name",
    "poll_interval",
    "next_look",
    "first_look",
    "claim_due",
    "process_claimed",
    "poll",
    "dispatch_job",
    "run_pump",
    "stale_pump_slots",
    "sweep_expired",
    "stream_job",
    "submit_and_start",
    "run_sync",
    "cancel_at_provider",
    "receive_webhook",
    "adopt_orphan",
]
