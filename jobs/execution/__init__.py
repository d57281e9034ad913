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

**Tool runs** (``tools``). A completed response that asks for tool calls is a step: each call
runs in its own task at most once, and the task that settles a step's last call continues the
run with the calls' outputs; the pump drives a step whose tasks were lost.

Tuning knobs for all of this are typed, with a sentence each, in ``config/tuning.py``.
"""

import importlib

# Each public name and the module it lives in. They are imported on first use (PEP 562), not
# when the package is: ``run_workers`` imports only ``cluster`` before it forks the workers, and
# every page its process loads counts again in each forked worker's RSS. Importing the provider
# (the openai SDK and aiohttp, ~45 MB) there raised the cluster's RSS sum by ~80 MB
# (bench/RESULTS.md, Dec 5).
_HOMES = {
    "claim_due": "claims",
    "worker_name": "claims",
    "adopt_orphan": "lanes",
    "cancel_at_provider": "lanes",
    "receive_webhook": "lanes",
    "run_sync": "lanes",
    "stream_job": "lanes",
    "submit_and_start": "lanes",
    "first_look": "pacing",
    "next_look": "pacing",
    "poll_interval": "pacing",
    "poll": "polling",
    "process_claimed": "polling",
    "dispatch_job": "pump",
    "run_pump": "pump",
    "stale_pump_slots": "pump",
    "sweep_expired": "pump",
    "advance_run": "tools",
    "continue_run": "tools",
    "drive_step": "tools",
    "run_tool_call": "tools",
}

__all__ = list(_HOMES)


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:  # a submodule (``execution.provider``) not imported yet
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value
