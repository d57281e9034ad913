"""django-q2 entry points. Each takes IDs and calls into the execution layer; nothing else.

Tasks are safe to run twice: every one of them claims its job (or slot) before acting.
"""

from . import execution, retention
from .execution.cluster import stopping
from .queue import enqueue


def dispatch_job(job_id):
    """Start the next attempt of a queued job (no-op if it is not due or already held), and
    wake the pump if none is running, so polling starts without waiting for the watchdog."""
    execution.dispatch_job(job_id)
    _start_quiet_pumps()


def run_pump(slot=0):
    """One pump (~PUMP_RUN_SECONDS). Halfway through it enqueues its successor, which takes
    the slot over when it starts, so polling does not pause while a successor waits in the
    queue (``execution.run_pump``). A pump that finds a live pump with a successor already
    waiting stops at once: a duplicate start (watchdog plus a manual kick) ends there. When
    ``run_workers`` is stopping, the pump ends its turn and frees the slot for the next one."""
    return execution.run_pump(
        slot=slot,
        hand_over=lambda: enqueue("jobs.tasks.run_pump", slot, group="pump"),
        stop=stopping,
    )


def watchdog():
    """Scheduled every minute: restart pump slots whose heartbeat stopped (killed workers)."""
    return _start_quiet_pumps()


def _start_quiet_pumps():
    stale = execution.stale_pump_slots()
    for slot in stale:
        # a duplicate start is harmless: the second pump finds the slot taken and exits
        enqueue("jobs.tasks.run_pump", slot, group="pump")
    return stale


def stream_job(job_id, attempt_id, handed_over_by=""):
    """Consume a stream-lane attempt; when ``run_workers`` is stopping, save what arrived and
    hand the job back, so the next cluster resumes from the cursor."""
    return execution.stream_job(job_id, attempt_id, handed_over_by, stop=stopping)


def run_tool_call(call_pk):
    """Run one tool call of a run (at most once), then continue the run if it was the last."""
    execution.run_tool_call(call_pk)


def continue_run(job_id):
    """Continue a tool run whose step has every call's output (after a person's decision)."""
    execution.continue_run(job_id)


def cancel_at_provider(job_id):
    execution.cancel_at_provider(job_id)


def adopt_orphan(response_id):
    return execution.adopt_orphan(response_id)


def sweep_expired():
    return execution.sweep_expired()


def purge_expired_content():
    """Scheduled daily: remove inputs and outputs past each workspace's retention."""
    return retention.purge_expired_content()
