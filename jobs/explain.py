"""What a submitter reads about a job, in plain words: the one place that maps Steward's
status fields (failure kind, retryable, partial output, human needed) and event kinds to
sentences. Pages, emails and notifications all read from here, so the wording stays the same
everywhere and provider words never reach a user.
"""

from dataclasses import dataclass

from . import hooks
from .errors import UnknownJobType
from .job_types import AuthorityClass, get_job_type
from .models import LIVE_ATTEMPT_STATES, OPEN, RETRYABLE_FROM, TERMINAL, Status, ToolCall
from .services.base import APPROVERS

# --- the event timeline --------------------------------------------------------------------

EVENT_LABELS = {
    "submitted": "Submitted",
    "attempt_started": "Attempt started",
    "dispatched": "Sent to the model",
    "running": "Model working",
    "retry_scheduled": "Retrying soon",
    "needs_review": "Waiting for review",
    "claimed": "Reviewer picked it up",
    "edited": "Reviewer edited the draft",
    "escalated": "Escalated",
    "approved": "Approved",
    "rejected": "Rejected",
    "sent_back": "Sent back for another attempt",
    "released": "Released",
    "completed": "Completed",
    "failed": "Failed",
    "canceled": "Canceled",
    "expired": "Expired",
    "retried": "Retried",
    "archived": "Archived",
    "purged": "Content removed under the retention policy",
    "stale_result": "Late result kept aside",
    "provider_stopped": "Stopped at the provider",
    "claim_renewed": "Claim renewed",
    "claim_released": "Reviewer put it back in the queue",
    "claim_expired": "Reviewer's claim expired",
    "attempt_lost": "Attempt lost; starting a new one",
    "lane_changed": "Moved to the background",
    "tool_calls": "The model asked for tools",
    "tool_call": "Tool",
    "continued": "Results sent back to the model",
}

# Events the timeline leaves out: streamed text chunks appear in the partial output instead.
HIDDEN_EVENTS = frozenset({"partial_output"})


def event_label(kind):
    return EVENT_LABELS.get(kind) or kind.replace("_", " ").capitalize()


def actor_name(label):
    """``system:poller`` is Steward itself; people keep their username."""
    if not label or label.startswith("system"):
        return "Steward"
    return label


@dataclass
class TimelineEntry:
    created_at: object
    kind: str
    label: str
    message: str
    actor: str
    parts: int = 1  # streamed text chunks this line stands for


def timeline_entries(events):
    """Events as a timeline lists them: a label for each kind, "Steward" for Steward's own
    actors, and each run of streamed text chunks as one line (the text is in the draft)."""
    entries = []
    for event in events:
        last = entries[-1] if entries else None
        if event.kind == "partial_output" and last is not None and last.kind == event.kind:
            last.parts += 1
            last.message = f"{last.parts} parts streamed."
            continue
        label = "Model wrote" if event.kind == "partial_output" else event_label(event.kind)
        message = "1 part streamed." if event.kind == "partial_output" else event.message
        entries.append(
            TimelineEntry(
                created_at=event.created_at,
                kind=event.kind,
                label=label,
                message="" if message.rstrip(".") == label else message,
                actor=actor_name(event.actor_label),
            )
        )
    return entries


# --- progress markers ----------------------------------------------------------------------

# (key, label, the event kinds that reach it, the statuses an event moving into reaches it).
# The first event that reaches a marker sets its time. The model has worked on a job once it
# was seen running, or once its answer arrived (a short job can finish before any look);
# the result is released when the job completes, whether at once, after approval or after
# the approved action ran. A tool run that pauses for a person to approve a step waits for
# review from that moment.
MARKERS = (
    ("queued", "Queued", ("submitted",), ()),
    ("started", "Attempt started", ("attempt_started", "dispatched"), ()),
    ("working", "Model working", ("running", "needs_review", "completed"), ()),
    ("review", "Waiting for review", ("needs_review", "approval_needed"), ()),
    ("released", "Released", (), ("completed",)),
)


def marker_rules():
    """``{"kinds": {kind: [keys]}, "statuses": {status: [keys]}}``: the table above for the
    page script, so the live page and the server reach markers by the same rule."""
    rules = {"kinds": {}, "statuses": {}}
    for key, _, kinds, statuses in MARKERS:
        for kind in kinds:
            rules["kinds"].setdefault(kind, []).append(key)
        for status in statuses:
            rules["statuses"].setdefault(status, []).append(key)
    return rules


def markers_reached_by(event, rules):
    keys = list(rules["kinds"].get(event.kind, ()))
    if event.to_status and event.to_status != event.from_status:
        keys += rules["statuses"].get(event.to_status, ())
    return keys


@dataclass
class Marker:
    key: str
    label: str
    at: object = None  # datetime, when reached

    @property
    def reached(self):
        return self.at is not None


def progress_markers(job, events):
    """The five progress markers with the time each was first reached (events in id order).
    Every job was queued when it was created, whatever its events say."""
    reached = {"queued": job.created_at}
    rules = marker_rules()
    for event in events:
        for key in markers_reached_by(event, rules):
            reached.setdefault(key, event.created_at)
    return [Marker(key, label, reached.get(key)) for key, label, *_ in MARKERS]


# --- status and failures -------------------------------------------------------------------

STATUS_SENTENCES = {
    Status.QUEUED: "Accepted and waiting for its turn.",
    Status.RUNNING: "The model is working on it.",
    Status.NEEDS_REVIEW: "The result is ready; a reviewer checks it before you get it.",
    Status.COMPLETED: "Done. The result is below.",
    Status.FAILED: "It stopped without a result.",
    Status.CANCELED: "It was stopped before it finished.",
    Status.EXPIRED: "It missed its deadline before it finished.",
}


@dataclass
class StatusLine:
    """The sentence under a job's status: ``text``, then ``at`` (a time the page shows in the
    reader's zone) and ``after``, when the sentence names a time."""

    text: str
    at: object = None
    after: str = ""


def status_line(job, events):
    """What is happening to the job now, in one sentence that its timeline (``events``, in id
    order) bears out: a retry says when and which attempt, a draft in review says who must act
    and whether the submitter may see it, a rejection reads as one."""
    last = events[-1] if events else None
    if job.status == Status.QUEUED:
        return _queued_line(job, last)
    if job.status == Status.NEEDS_REVIEW:
        return StatusLine(_review_sentence(job))
    if job.status == Status.FAILED and job.failure_kind == "review":
        return StatusLine("A reviewer rejected the draft; their reason is below.")
    if job.status == Status.FAILED and is_cut_short(job):
        return StatusLine("It stopped before the answer was complete; what it wrote is below.")
    if job.status == Status.RUNNING and job.lane == "stream":
        if draft_withheld(job):
            return StatusLine(
                "The model is writing a draft; a reviewer checks it before you see it."
            )
        return StatusLine("The model is writing the answer below.")
    return StatusLine(STATUS_SENTENCES.get(job.status, ""))


def _queued_line(job, last):
    if last is not None and last.kind == "retry_scheduled" and job.next_poll_at:
        number = (last.data or {}).get("attempt", job.attempt_count)
        return StatusLine(
            f"The AI service had a temporary problem with attempt {number}. Steward tries again at",
            at=job.next_poll_at,
            after=f" (attempt {number + 1} of {job.attempt_limit}).",
        )
    if last is not None and last.kind == "dispatched":
        return StatusLine("Sent to the model; Steward has not seen it start yet.")
    if last is not None and last.kind == "sent_back":
        return StatusLine(
            "A reviewer sent the draft back; the next attempt follows their notes and starts soon."
        )
    return StatusLine(STATUS_SENTENCES[Status.QUEUED])


def waiting_call(job):
    """The first tool call the job's run waits on for approval, or None."""
    if job.status != Status.NEEDS_REVIEW:
        return None
    return job.tool_calls.filter(state=ToolCall.State.AWAITING_APPROVAL).order_by("id").first()


def _review_sentence(job):
    call = waiting_call(job)
    if call is not None:
        spec = get_job_type(job.job_type)
        tool = spec.tool(call.name)
        approver = APPROVERS.get(tool.approver_role if tool else "admin", "an approver")
        what = tool.sentence(call.arguments) if tool else call.name
        return f"The run is paused: {approver} must approve “{what}” before it goes on."
    if job.review_state == "escalated":
        return "A reviewer passed the draft to a workspace admin, who decides on it."
    if job.authority_class != AuthorityClass.EXTERNAL_EFFECT:
        return STATUS_SENTENCES[Status.NEEDS_REVIEW]
    if job.review_state == "approved":
        return "Approved: Steward runs the action once, now."
    approver = APPROVERS.get(hooks.review_policy(job.job_type).approver_role, "an approver")
    return f"Nothing has been done yet: it runs once {approver} approves it."


def draft_withheld(job):
    """Whether the job's submitter may not read its draft yet: a job type whose drafts are
    always reviewed and not shown while in review (``submitter_sees_draft_in_review``), before
    the job completes. Its streamed text then stays off the job page and out of its events."""
    if job.status not in OPEN or not hooks.always_reviewed(job.authority_class):
        return False
    try:
        return not get_job_type(job.job_type).submitter_sees_draft_in_review
    except UnknownJobType:
        return True


def attempt_outcome(attempt, job):
    """An attempt's outcome as the job page lists it: an attempt still in flight when its job
    stopped (a cancel, a deadline) is stopped, whatever the provider says later."""
    if _stopped(attempt) and job.status in TERMINAL:
        return f"Stopped: the job was {job.get_status_display().lower()}"
    return attempt.get_state_display()


def is_late_result(attempt):
    """An attempt whose result arrived after its job stopped (kept, never released); an
    attempt the provider confirms it stopped brought no result."""
    return attempt.is_stale and not _stopped(attempt)


def _stopped(attempt):
    return attempt.state in LIVE_ATTEMPT_STATES or (
        attempt.is_stale and attempt.provider_status == "cancelled"
    )


def is_cut_short(job):
    """A failure whose answer the model began but did not finish (its length limit)."""
    return job.failure_kind == "provider" and job.has_partial_output and not job.failure_retryable


WHAT_HAPPENED = {
    "input": "Steward could not use the input as given.",
    "provider": "The AI service had a problem while working on this job.",
    "tool": "A tool this job relies on did not work.",
    "policy": "The content was blocked by a safety policy.",
    "timeout": "It took too long and missed its deadline.",
    "review": "A reviewer did not accept the result.",
}


@dataclass
class Explanation:
    headline: str
    details: str
    retry_helps: str
    partial: str
    person: str
    next_action: str  # "retry", "resubmit" or ""
    next_label: str
    partial_label: str = "Partial answer"


def explain(job):
    """Plain words for a failed, canceled or expired job; ``None`` for any other status."""
    if job.status not in RETRYABLE_FROM:
        return None
    attempts_left = job.attempt_count < job.attempt_limit
    kind = job.failure_kind
    if job.status == Status.CANCELED:
        headline = "The job was canceled before it finished."
        retryable = True
    elif job.status == Status.EXPIRED:
        headline = WHAT_HAPPENED["timeout"]
        retryable = True
    elif is_cut_short(job):
        headline = "The model stopped before the answer was complete."
        retryable = False
    else:
        headline = WHAT_HAPPENED.get(kind, "The job stopped without a result.")
        retryable = job.failure_retryable

    if not attempts_left:
        retry_helps = (
            f"It has used all {job.attempt_limit} of its attempts, so it can't be retried. "
            "You can start it again as a new job."
        )
        next_action, next_label = "resubmit", "Start it again as a new job"
    elif job.status == Status.CANCELED:
        retry_helps = "Nothing went wrong: it was stopped on purpose. Retry runs it again."
        next_action, next_label = "retry", "Run it again"
    elif retryable:
        retry_helps = "Retrying is likely to help: the problem looks temporary."
        next_action, next_label = "retry", "Retry"
    elif kind == "input":
        retry_helps = "Retrying the same input won't help. Correct the input and submit again."
        next_action, next_label = "resubmit", "Correct the input and submit again"
    else:
        retry_helps = "Retrying the same input is unlikely to help."
        next_action, next_label = "resubmit", "Change the input and submit again"

    if kind == "review":
        partial = "The rejected draft is shown below, as the reviewer last saw it."
    elif job.has_partial_output:
        partial = "Part of the answer was produced before it stopped; it is shown below."
    else:
        partial = "No partial answer was produced."

    if kind == "review":
        person = "You do: the reviewer's reason says what to change before you submit again."
    elif job.needs_human or kind == "policy":
        person = "A person needs to look at this: check the details, or ask your workspace admin."
    elif job.status == Status.CANCELED:
        person = "Nobody needs to step in."
    elif retryable and attempts_left:
        person = "Nobody needs to step in; a retry should be enough."
    else:
        person = "You decide what to do next."

    details = job.failure_reason if job.status == Status.FAILED else ""
    return Explanation(
        headline,
        details,
        retry_helps,
        partial,
        person,
        next_action,
        next_label,
        partial_label="The draft" if kind == "review" else "Partial answer",
    )


def tool_steps(job):
    """The calls of a tool run in plain words, step by step, for the job page and the API:
    ``[{"number", "calls": [{"sentence", "name", "state", "state_label", "arguments",
    "output", "error", "started_at", "finished_at"}]}]``."""
    try:
        spec = get_job_type(job.job_type)
    except UnknownJobType:
        return []
    if not spec.tools:
        return []
    steps = {}
    for call in (
        ToolCall.objects.filter(job=job).select_related("step").order_by("step__number", "id")
    ):
        tool = spec.tool(call.name)
        steps.setdefault((call.step.attempt_id, call.step.number), []).append(
            {
                "call_id": call.call_id,
                "sentence": tool.sentence(call.arguments) if tool else call.name,
                "name": call.name,
                "state": call.state,
                "state_label": call.get_state_display(),
                "arguments": call.arguments,
                "output": call.output if not call.error else "",
                "error": call.error,
                "note": call.decision_note,
                "edited": call.original_arguments is not None,
                "started_at": call.started_at,
                "finished_at": call.finished_at,
            }
        )
    return [{"number": number, "calls": calls} for (_, number), calls in steps.items()]
