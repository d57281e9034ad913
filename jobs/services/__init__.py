"""Every write to a job. One function per action; each runs in one transaction and leaves
exactly one ``JobEvent`` with its actor. Illegal moves raise ``jobs.errors`` exceptions whose
message is written for the person who tried.

``actor`` is a ``User`` for people, or a label such as ``"system:poller"`` for Steward itself.

The functions live in eight modules by concern and are all importable from here:
``base`` (events, refusals, FSM moves), ``submission``, ``controls`` (cancel, expire, retry,
archive, fail), ``attempts`` (the provider lane's writes for one attempt), ``batches`` (the
pump's writes for many attempts at once), ``finishing`` (how an attempt's result ends it: one
decision for the one-job and the batch path) and ``review`` (one service per outcome of a
reviewer's decision: the only job writes the review app makes) and ``runs`` (a tool run's
steps, calls and continuations).
"""

from ..errors import IdempotencyKeyReused
from .attempts import (
    add_artifact,
    begin_attempt,
    look_soon,
    mark_running,
    move_to_background_lane,
    record_dispatch,
    save_stream_progress,
)
from .base import (
    VERBS,
    allowed_controls,
    record_event,
    record_events,
    record_note,
    refusal,
    retry_delay,
    reviewer_notes_by_job,
    reviewer_notes_for,
)
from .batches import (
    begin_attempts,
    mark_running_batch,
    record_dispatches,
)
from .controls import (
    archive_job,
    cancel_job,
    expire_job,
    fail_job,
    retry_job,
)
from .finishing import (
    finish_attempt,
    finish_completed_batch,
)
from .review import (
    approve_for_release,
    approve_job,
    complete_release,
    escalate_job,
    fail_release,
    reject_job,
    send_back_job,
)
from .runs import (
    approve_tool_call,
    begin_continuation,
    continuation_failed,
    finish_tool_call,
    interrupt_tool_call,
    record_continuation,
    record_step,
    reject_tool_call,
    start_tool_call,
    step_settled,
    time_out_approvals,
)
from .submission import (
    submit_job,
)

__all__ = [
    "record_event",
    "record_events",
    "record_note",
    "refusal",
    "retry_delay",
    "reviewer_notes_for",
    "reviewer_notes_by_job",
    "IdempotencyKeyReused",
    "VERBS",
    "allowed_controls",
    "submit_job",
    "cancel_job",
    "expire_job",
    "retry_job",
    "archive_job",
    "fail_job",
    "begin_attempt",
    "record_dispatch",
    "look_soon",
    "mark_running",
    "add_artifact",
    "finish_attempt",
    "save_stream_progress",
    "move_to_background_lane",
    "begin_attempts",
    "record_dispatches",
    "finish_completed_batch",
    "mark_running_batch",
    "approve_job",
    "approve_for_release",
    "escalate_job",
    "reject_job",
    "send_back_job",
    "complete_release",
    "fail_release",
    "record_step",
    "start_tool_call",
    "finish_tool_call",
    "interrupt_tool_call",
    "step_settled",
    "begin_continuation",
    "record_continuation",
    "continuation_failed",
    "approve_tool_call",
    "reject_tool_call",
    "time_out_approvals",
]
