"""Steward's worker runtime: everything that runs jobs at the provider, apart from the job
domain (records, services, job types, pages and API), which it changes only through
``jobs.services``.

**Processes.** ``manage.py run_workers`` (``cluster``) is django-q2's cluster in three processes
for two workers: the sentinel runs the pusher and the monitor as threads and forks only the
workers. It watches for the wedges django-q2 #23, #339 and #346 describe (a worker killed while
it held a queue's lock stops the whole cluster) and restarts the cluster in place when one
lasts ``WORKER_WEDGE_SECONDS``. It reads django-q2's internals, so django-q2 is pinned (1.11.1)
and a test fails on any other release. Workers run under ``config/workers.py``: the web
settings with one persistent database connection per forked worker instead of the web pool.

**The pump.** django-q2's schedules are minute-grained, so due jobs are found by a *pump* task
(``pump``) that loops inside one worker for ``PUMP_RUN_SECONDS``. Each turn it claims a batch of
due jobs (``claims``: ``next_poll_at <= now`` and no live lease, with ``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL or an atomic lease update inside SQLite's IMMEDIATE transaction), starts
the queued ones (``dispatch``, at most ``PUMP_STARTS_PER_TURN``), retrieves the in-flight ones
concurrently on one event loop (``polling``), applies the results through the services (the
batch path for plain completions), and writes each job's next look (``pacing``: backoff, and a
first look learned per job type from its recent run times). When nothing is due it sleeps a
fraction of a second, so no worker ever sleeps on one job and one worker tracks thousands.
Halfway through, a pump enqueues its successor and keeps polling until the successor takes the
slot; a once-a-minute watchdog restarts a slot whose heartbeat went quiet (a SIGKILLed worker).
Leases expire, so jobs a killed worker held become due again. ``PUMP_SLOTS`` pumps run at once
across all clusters.

**Lanes** (``lanes``). Background jobs go through the pump; a stream job is a task that reads
the provider's event stream, saves text with its cursor and resumes from the cursor after a
crash; a sync job runs inside the web request and moves to background after
``SYNC_LANE_TIMEOUT``. Provider webhooks only make a job due now; polling stays the safety net
(``WEBHOOK_SAFETY_POLL_SECONDS``). Cancel reaches the provider after commit; orphans (responses
Steward started but never recorded) are adopted or cancelled.

**The provider** (``provider``) is the only code that imports ``openai``; it hands plain values
back (``Dispatch``, ``Snapshot``, ``AttemptOutcome``, ``ProviderError``). The pump's async
client runs over the SDK's maintained aiohttp client, which at 10,000 jobs in flight meets the
pump's targets at about 60 % of the CPU per retrieve of the SDK's default httpx one;
``PROVIDER_HTTP`` selects a lean HTTP/1.1 transport of Steward's own (``provider/transport.py``,
bounded reads, about 5 % less CPU) or the SDK's default instead (bench/retrieve_cpu.py and
bench/p1_inflight.py measure them). The **circuit breaker**
(``circuit``) counts calls in ten-second buckets and holds new dispatch, with a visible reason,
while the provider's error rate is high.

Tuning knobs for all of this are typed, with a sentence each, in ``config/tuning.py``.
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
