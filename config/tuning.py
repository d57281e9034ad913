"""Tuning knobs: the settings an operator changes only with a measured reason.

Each knob is one typed field of ``Tuning`` with its default and a sentence. ``config.settings``
reads each from the environment under its own name (``POLL_BATCH=800``) and exposes it as a
plain setting (``settings.POLL_BATCH``), so code reads it when it runs (never at import) and
tests override it with pytest-django's ``settings`` fixture. A value that does not parse as the
field's type stops the process at start with the knob's name.

The README lists the deployment settings (where the database, broker, provider and mail are;
secrets; hosts); everything here has a default that the benchmarks in ``bench/`` were run with.
"""

from dataclasses import dataclass, field, fields


def knob(default, doc):
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Tuning:
    # --- polling and the pump (jobs/execution) ----------------------------------------------
    POLL_MIN_INTERVAL: float = knob(1.5, "Seconds before the first look at a job again.")
    POLL_MAX_INTERVAL: float = knob(60.0, "Longest wait between two looks at a running job.")
    POLL_BATCH: int = knob(500, "Due jobs one pump turn claims at most.")
    POLL_LEASE_SECONDS: int = knob(
        30, "How long a claimed job is held; a killed worker's jobs are due again after it."
    )
    POLL_LEARN_SAMPLES: int = knob(
        200,
        "Recent run times per job type the first look learns from: it waits 0.9 × their 2nd "
        "percentile (jobs/execution/pacing.py); 0 turns learning off.",
    )
    POLL_LEARN_MIN_SAMPLES: int = knob(20, "Run times needed before the learned first look.")
    POLL_LEARN_REFRESH_SECONDS: float = knob(300.0, "How often the learned first look updates.")
    PUMP_SLOTS: int = knob(1, "Pump loops running at once across all clusters.")
    PUMP_STARTS_PER_TURN: int = knob(
        32, "New attempts one pump turn starts; the rest of a burst waits behind due polls."
    )
    PUMP_RUN_SECONDS: int = knob(
        50, "A pump enqueues its successor after this long and polls until it takes over."
    )
    PUMP_MAX_SECONDS: int = knob(
        80, "The longest a pump runs while its successor waits (under the task timeout, 90 s)."
    )
    PUMP_STALE_SECONDS: int = knob(20, "A pump slot silent this long is restarted.")
    WORKER_WEDGE_SECONDS: int = knob(
        15,
        "run_workers replaces a cluster that has looked wedged this long "
        "(jobs/execution/cluster.py).",
    )
    WORKER_CONN_MAX_AGE: int = knob(
        60, "Seconds a task worker keeps its PostgreSQL connection between tasks."
    )
    DISPATCH_PAUSE_RECHECK_SECONDS: int = knob(
        5, "While a workspace's dispatch is paused, how often its queued jobs are looked at."
    )
    STEWARD_POLL_LOG: str = knob(
        "", "A file the pump appends one line per poll to (the chaos tests read it); off if empty."
    )

    # --- the provider -----------------------------------------------------------------------
    PROVIDER_TIMEOUT: float = knob(30.0, "Seconds one provider call may take.")
    PROVIDER_HTTP: str = knob(
        "aiohttp",
        "The pump's HTTP client: aiohttp (the SDK's DefaultAioHttpClient), lean (Steward's own "
        "HTTP/1.1 transport, jobs/execution/provider/transport.py) or httpx (the SDK's default); "
        "bench/retrieve_cpu.py and bench/p1_inflight.py compare them.",
    )
    SYNC_LANE_TIMEOUT: float = knob(
        20.0, "Seconds a sync-lane job may run inside the request before it moves to background."
    )
    WEBHOOK_SAFETY_POLL_SECONDS: float = knob(
        540.0,
        "With provider webhooks on, seconds between safety-net polls (under the provider's "
        "ten-minute retention, so a lost webhook's result is still read).",
    )
    CIRCUIT_MIN_CALLS: int = knob(20, "Calls in the window before the circuit breaker may open.")
    CIRCUIT_ERROR_RATE: float = knob(0.5, "Share of failed calls that opens the circuit breaker.")
    FAKE_OPENAI_DURATION: str = knob(
        "4", "Seconds each response of the bundled fake takes, so the demo can be watched."
    )

    # --- requests and the API ---------------------------------------------------------------
    REQUEST_MAX_BYTES: int = knob(
        3 * 1024 * 1024,
        "The largest request body read (a 200,000-character review edit, every character "
        "escaped, is 2.4 MB); larger ones get 413 before they are read.",
    )
    API_THROTTLE_USER: str = knob("1200/min", "API requests per user (all tokens and sessions).")
    API_THROTTLE_TOKEN: str = knob("600/min", "API requests per token.")
    API_EVENT_STREAM_MAX_SECONDS: int = knob(
        300, "How long one event stream stays open before the client reconnects."
    )

    # --- outgoing webhooks ------------------------------------------------------------------
    WEBHOOK_MAX_ATTEMPTS: int = knob(6, "Attempts per outgoing webhook delivery.")
    WEBHOOK_RETRY_BASE_SECONDS: float = knob(30.0, "First wait between delivery attempts.")
    WEBHOOK_RETRY_MAX_SECONDS: float = knob(3600.0, "Longest wait between delivery attempts.")


def load_tuning(env):
    """Every knob's value, from ``env`` (a django-environ ``Env``) or its default."""
    readers = {int: env.int, float: env.float, str: env.str, bool: env.bool}
    values = {}
    for knob_field in fields(Tuning):
        try:
            values[knob_field.name] = readers[knob_field.type](
                knob_field.name, default=knob_field.default
            )
        except ValueError as error:
            raise ValueError(f"{knob_field.name}: {error}") from None
    return values
