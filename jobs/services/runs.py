"""The writes of a tool run: a step and its calls, each call's claim and result, and the
continuation that carries the results back to the model (``jobs.execution.tools`` drives them).

A completed response that asks for ``function_call``s is a *step*: ``record_step`` stores it
with its usage and one ``ToolCall`` per call, once, however often the response is looked at.
A call runs at most once: ``start_tool_call`` moves it from pending to running in one
conditional update, and only the caller that made that update runs it. When every call of the
step has its output, ``begin_continuation`` marks the step (under the job's row lock) before the
continuation is created, and ``record_continuation`` stores the new response as the next step.
"""

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed

from ..errors import ToolArgumentsInvalid, ToolCallNotFound, TransitionNotAllowed, UnknownJobType
from ..job_types import AuthorityClass, get_job_type
from ..models import (
    SETTLED_CALL_STATES,
    Attempt,
    FailureKind,
    Job,
    ReviewState,
    RunStep,
    Status,
    ToolCall,
)
from ..results import AttemptOutcome
from .attempts import mark_running
from .base import (
    APPROVERS,
    actor_fields,
    dispatch_on_commit,
    enqueue_on_commit,
    fresh_copy,
    move_job,
    record_note,
)
from .controls import fail_job
from .finishing import USAGE_FIELDS, finish_attempt, is_current

# How long the pump leaves a step alone before it looks again, should the tasks that run its
# calls and continue the run be lost (a killed worker): it then drives the step on itself.
STEP_SAFETY_SECONDS = 60
# A continuation marked but never recorded after this long is taken as lost (the worker died
# around its create): the attempt is given up, and a new one resumes after the finished steps.
# The step is never continued twice: the lost create may have reached the provider.
CONTINUATION_STALE_SECONDS = 120


@transaction.atomic
def record_step(*, job, attempt, outcome, actor="system:poller"):
    """A completed response asked for tool calls: store it as a step of the run with its calls.

    Idempotent: the same response seen again returns its step unchanged. A response that no
    longer counts (a canceled job, a superseded attempt) goes to ``finish_attempt``, which keeps
    it as stale; a step that crosses the job type's limits ends the attempt as a ``tool``
    failure. Returns the step, or None when the run does not go on."""
    attempt = Attempt.objects.get(pk=attempt.pk)
    job = fresh_copy(job)
    if attempt.state != Attempt.State.IN_FLIGHT or not is_current(job, attempt):
        finish_attempt(job=job, attempt=attempt, outcome=replace(outcome, tool_calls=()))
        return None
    step, _ = RunStep.objects.get_or_create(
        response_id=attempt.provider_response_id,
        defaults={"job": job, "attempt": attempt, "number": 1},
    )
    if step.finished_at is not None:
        return step
    spec = get_job_type(job.job_type)
    earlier_calls = ToolCall.objects.filter(step__attempt=attempt).count()
    crossed = _limit_crossed(
        spec.limits,
        step.number,
        earlier_calls + len(outcome.tool_calls),
        job.cost + outcome.usage.cost,
    )
    if crossed:
        finish_attempt(
            job=job,
            attempt=attempt,
            outcome=replace(
                outcome,
                status="failed",
                failure_kind="tool",
                retryable=False,
                error_code="run_limit",
                error_message=crossed,
                tool_calls=(),
            ),
            actor=actor,
        )
        return None
    now = timezone.now()
    usage = outcome.usage
    RunStep.objects.filter(pk=step.pk).update(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost=usage.cost,
        finished_at=now,
    )
    added = {name: F(name) + getattr(usage, name) for name in USAGE_FIELDS}
    Attempt.objects.filter(pk=attempt.pk).update(**added, provider_status="completed")
    Job.objects.filter(pk=job.pk).update(**added)
    calls = [_new_call(job, step, spec, requested) for requested in outcome.tool_calls]
    ToolCall.objects.bulk_create(calls)
    changes = {
        "next_poll_at": now + timedelta(seconds=STEP_SAFETY_SECONDS),
        "lease_owner": "",
        "lease_expires_at": None,
    }
    asked = "; ".join(_sentence(spec, call) for call in calls)
    data = {"step": step.number, "calls": [[call.call_id, call.name] for call in calls]}
    job = fresh_copy(job)
    if job.status == Status.QUEUED:  # no look saw the model start before it asked for tools
        job = mark_running(job=job, actor=actor)
    Job.objects.filter(pk=job.pk).update(**changes)
    record_note(job, "tool_calls", actor=actor, message=f"The model asked to: {asked}.", data=data)
    waiting = [call for call in calls if call.state == ToolCall.State.AWAITING_APPROVAL]
    if waiting:
        _hold_for_approval(fresh_copy(job), spec, waiting, actor)
    step.refresh_from_db()
    return step


def _hold_for_approval(job, spec, calls, actor):
    """An external-effect call waits for a person: the job is in review until it is decided."""
    what = "; ".join(_sentence(spec, call) for call in calls)
    approver = APPROVERS.get(spec.tool(calls[0].name).approver_role, "an approver")
    move_job(
        job,
        "hold_for_review",
        actor=actor,
        kind="approval_needed",
        message=f"Waiting for {approver} to approve: {what}.",
        data={"calls": [call.call_id for call in calls]},
        review_state=ReviewState.PENDING,
        next_poll_at=None,
        lease_owner="",
        lease_expires_at=None,
    )


def _awaiting(job):
    return ToolCall.objects.filter(job=job, state=ToolCall.State.AWAITING_APPROVAL)


def _decidable(job, call_id):
    """The job (locked) and its call waiting for a decision; raises when there is none."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    call = ToolCall.objects.select_related("step").filter(job=job, call_id=call_id).first()
    if call is None:
        raise ToolCallNotFound("There is no such tool call on this job.")
    if call.state != ToolCall.State.AWAITING_APPROVAL or job.status != Status.NEEDS_REVIEW:
        state = call.get_state_display().lower()
        raise TransitionNotAllowed(f"This call is no longer waiting for approval (it is {state}).")
    return job, call


def _go_on(job, actor, message):
    """Once no call of the job waits for a decision, the run goes on (needs_review →
    running) and, if every call of the step has its output, is continued."""
    if _awaiting(job).exists():
        return
    move_job(
        job,
        "resume_run",
        actor=actor,
        kind="running",
        message=message,
        review_state=ReviewState.NONE,
        next_poll_at=timezone.now() + timedelta(seconds=STEP_SAFETY_SECONDS),
    )


@transaction.atomic
def approve_tool_call(*, job, call_id, actor, arguments=None):
    """A person approves a call waiting for approval, as the model wrote it or with
    ``arguments`` of their own (checked against the tool's schema; the model's are kept). The
    call then runs once. Returns the call."""
    job, call = _decidable(job, call_id)
    spec = get_job_type(job.job_type)
    tool = spec.tool(call.name)
    changes = {}
    if arguments is not None and arguments != call.arguments:
        if isinstance(arguments, dict):
            problems = tool.argument_errors(arguments)
        else:
            problems = ["arguments: send an object of the tool's fields"]
        if problems:
            raise ToolArgumentsInvalid(
                "These arguments do not fit the tool: " + "; ".join(problems)
            )
        changes = {"original_arguments": call.arguments, "arguments": arguments}
    ToolCall.objects.filter(pk=call.pk).update(
        state=ToolCall.State.PENDING, decided_by=_user(actor), decision_note="", **changes
    )
    call.refresh_from_db()
    edited = " with edited arguments" if changes else ""
    record_note(
        job,
        "tool_call_approved",
        actor=actor,
        message=f"{_sentence(spec, call)}: approved{edited}.",
        data={"call_id": call.call_id, "edited": bool(changes), **changes},
    )
    _go_on(job, actor, "Approved; the run goes on.")
    enqueue_on_commit("jobs.tasks.run_tool_call", call.pk)
    return call


@transaction.atomic
def reject_tool_call(*, job, call_id, actor, reason):
    """A person rejects a call waiting for approval: it does not run, and ``reason`` goes back
    to the model as the call's output, so it can adapt. Returns the call."""
    job, call = _decidable(job, call_id)
    spec = get_job_type(job.job_type)
    _settle(call, ToolCall.State.REJECTED, output=json.dumps({"rejected_by_reviewer": reason}))
    ToolCall.objects.filter(pk=call.pk).update(
        state=call.state,
        output=call.output,
        finished_at=call.finished_at,
        decided_by=_user(actor),
        decision_note=reason,
    )
    record_note(
        job,
        "tool_call_rejected",
        actor=actor,
        message=f"{_sentence(spec, call)}: rejected. The model is told why: {reason}",
        data={"call_id": call.call_id},
    )
    _go_on(job, actor, "Decided; the run goes on.")
    if step_settled(call.step_id):
        enqueue_on_commit("jobs.tasks.continue_run", str(job.pk))
    return call


def time_out_approvals(*, now=None):
    """Calls that waited for approval past their job type's ``approval_timeout`` are recorded
    as timed out (not rejected), and their runs stop with that reason. Returns how many."""
    now = now or timezone.now()
    stopped = 0
    waiting = (
        ToolCall.objects.filter(
            state=ToolCall.State.AWAITING_APPROVAL, job__status=Status.NEEDS_REVIEW
        )
        .order_by()
        .values_list("pk", "job_id", "job__job_type", "created_at")
    )
    for call_pk, job_id, job_type, created_at in waiting:
        try:
            spec = get_job_type(job_type)
        except UnknownJobType:
            continue
        limit = spec.limits.approval_timeout
        if created_at > now - limit:
            continue
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            call = ToolCall.objects.get(pk=call_pk)
            moved = ToolCall.objects.filter(
                pk=call.pk, state=ToolCall.State.AWAITING_APPROVAL
            ).update(
                state=ToolCall.State.TIMED_OUT,
                output=json.dumps({"timed_out": "nobody approved it in time"}),
                finished_at=now,
            )
            if not moved or job.status != Status.NEEDS_REVIEW:
                continue
            hours = round(limit.total_seconds() / 3600, 1)
            fail_job(
                job=job,
                actor="system:tools",
                kind=FailureKind.TIMEOUT,
                reason=f"Nobody approved “{_sentence(spec, call)}” within {hours:g} h, so the "
                "run stopped. Nothing was done.",
            )
            stopped += 1
    return stopped


def _limit_crossed(limits, turns, calls, cost):
    if turns > limits.turns:
        return f"The run stopped: it reached its limit of {limits.turns} model turns."
    if calls > limits.tool_calls:
        return f"The run stopped: the model asked for more than {limits.tool_calls} tool calls."
    if limits.cost_usd is not None and cost > Decimal(limits.cost_usd):
        return f"The run stopped: it would cost more than its budget of ${limits.cost_usd}."
    return ""


def _new_call(job, step, spec, requested):
    tool = spec.tool(requested.name)
    call = ToolCall(
        job=job,
        step=step,
        call_id=requested.call_id[:80],
        name=requested.name[:64],
        authority_class=tool.authority_class if tool else AuthorityClass.READ_ONLY,
    )
    try:
        arguments = json.loads(requested.arguments or "{}")
    except ValueError:
        arguments = None
    if isinstance(arguments, dict):
        call.arguments = arguments
    else:
        call.raw_arguments = (requested.arguments or "")[:10_000]
    if tool is None:
        _settle(call, ToolCall.State.FAILED, error=f"There is no tool called {requested.name!r}.")
    elif not isinstance(arguments, dict):
        _settle(call, ToolCall.State.FAILED, error="The arguments are not a JSON object.")
    elif problems := tool.argument_errors(arguments):
        _settle(
            call,
            ToolCall.State.FAILED,
            error="The arguments do not fit the tool's schema: " + "; ".join(problems),
        )
    elif tool.authority_class == AuthorityClass.EXTERNAL_EFFECT:
        call.state = ToolCall.State.AWAITING_APPROVAL
    return call


def _settle(call, state, *, output="", error=""):
    call.state = state
    call.error = error
    call.output = output if not error else json.dumps({"error": error})
    call.finished_at = timezone.now()


def _sentence(spec, call):
    tool = spec.tool(call.name)
    return tool.sentence(call.arguments) if tool else call.name


def start_tool_call(call_pk):
    """Claim a pending call for running, once: returns it, or None when it is not pending (run
    or being run elsewhere, decided) or its job no longer runs."""
    claimed = ToolCall.objects.filter(
        pk=call_pk, state=ToolCall.State.PENDING, job__status=Status.RUNNING
    ).update(state=ToolCall.State.RUNNING, started_at=timezone.now(), tries=F("tries") + 1)
    if not claimed:
        return None
    return ToolCall.objects.select_related("job", "step").get(pk=call_pk)


@transaction.atomic
def finish_tool_call(call, *, output="", error="", again=False, actor="system:tools"):
    """Record what a running call returned (``output``, JSON text) or why it failed (``error``,
    which goes back to the model as the call's output). ``again``: the failure is retried, so
    the call is pending once more. Returns whether every call of its step now has its output."""
    state = (
        ToolCall.State.PENDING
        if again
        else (ToolCall.State.FAILED if error else ToolCall.State.SUCCEEDED)
    )
    settled = ToolCall(state=state)
    _settle(settled, state, output=output, error=error)
    updated = ToolCall.objects.filter(pk=call.pk, state=ToolCall.State.RUNNING).update(
        state=state,
        output="" if again else settled.output,
        error=error,
        finished_at=None if again else settled.finished_at,
    )
    if not updated:
        return False
    job = fresh_copy(call.job)
    spec = get_job_type(job.job_type)
    what = _sentence(spec, call)
    if again:
        message = f"{what}: failed ({error}); trying again."
    elif error:
        message = f"{what}: failed. The model is told why: {error}"
    else:
        message = f"{what}: done."
    record_note(
        job,
        "tool_call",
        actor=actor,
        message=message,
        data={"call_id": call.call_id, "tool": call.name, "state": state},
    )
    return step_settled(call.step_id)


def interrupt_tool_call(call, *, actor="system:tools"):
    """A call was running when its worker died. A read-only tool is simply run again; any
    other may or may not have acted, so it is not repeated: the model is told so."""
    if call.authority_class == AuthorityClass.READ_ONLY:
        return bool(
            ToolCall.objects.filter(pk=call.pk, state=ToolCall.State.RUNNING).update(
                state=ToolCall.State.PENDING
            )
        )
    finish_tool_call(
        call,
        error="The tool was interrupted; whether it took effect is unknown, so it was not "
        "run again.",
        actor=actor,
    )
    return False


def step_settled(step_pk):
    """Whether every call of the step has its output for the model."""
    return (
        not ToolCall.objects.filter(step_id=step_pk).exclude(state__in=SETTLED_CALL_STATES).exists()
    )


@transaction.atomic
def begin_continuation(job_id):
    """Mark the latest step of the job's run as being continued, under the job's row lock, and
    return ``(job, attempt, step)``; None when there is nothing to continue (the job stopped,
    a call has no output yet, the step was continued, or a continuation is under way)."""
    job = Job.objects.select_for_update().filter(pk=job_id, status=Status.RUNNING).first()
    if job is None:
        return None
    step = (
        RunStep.objects.select_related("attempt")
        .filter(job=job, attempt__number=job.attempt_count)
        .order_by("-number")
        .first()
    )
    if step is None or step.finished_at is None or step.attempt.state != Attempt.State.IN_FLIGHT:
        return None
    if step.attempt.provider_response_id != step.response_id or not step_settled(step.pk):
        return None
    now = timezone.now()
    if step.continuing_since is not None:
        if step.continuing_since <= now - timedelta(seconds=CONTINUATION_STALE_SECONDS):
            _give_up_attempt(job, step.attempt)
        return None
    RunStep.objects.filter(pk=step.pk).update(continuing_since=now)
    return job, step.attempt, step


def _give_up_attempt(job, attempt):
    """The continuation of the attempt's last step was marked and never recorded: its create
    may have reached the provider, so the step is not continued again. The attempt is
    abandoned and the job queued for a new one, which starts after the finished steps."""
    Attempt.objects.filter(pk=attempt.pk).update(
        state=Attempt.State.ABANDONED,
        finished_at=timezone.now(),
        error_message="The worker stopped while sending the tools' results back.",
    )
    message = f"Steward lost track of attempt {attempt.number}; a new one resumes the run."
    if not can_proceed(job.requeue):
        fail_job(
            job=job,
            actor="system:tools",
            kind=FailureKind.PROVIDER,
            reason="Steward lost track of its last attempt and none are left.",
        )
        return
    move_job(
        job,
        "requeue",
        actor="system:tools",
        kind="attempt_lost",
        message=message,
        data={"attempt": attempt.number},
        next_poll_at=timezone.now(),
        lease_owner="",
        lease_expires_at=None,
    )
    dispatch_on_commit(job)


@transaction.atomic
def record_continuation(*, job, attempt, step, dispatch, replayed, next_poll_at):
    """The provider accepted the continuation of ``step``: it is the run's next step, and the
    response the pump looks at from now on."""
    job = fresh_copy(job)
    nxt = RunStep.objects.create(
        job=job,
        attempt=attempt,
        number=step.number + 1,
        response_id=dispatch.response_id,
        replayed=replayed,
    )
    Attempt.objects.filter(pk=attempt.pk).update(
        provider_response_id=dispatch.response_id, provider_status=dispatch.provider_status
    )
    Job.objects.filter(pk=job.pk).update(next_poll_at=next_poll_at)
    how = " (the whole conversation again: the provider would not continue the last response)"
    record_note(
        job,
        "continued",
        actor="system:tools",
        message="Sent the tools' results back to the model" + (how if replayed else "") + ".",
        data={"step": nxt.number, "replayed": replayed},
    )
    return nxt


@transaction.atomic
def continuation_failed(*, job, attempt, step, error):
    """The continuation's create failed. A temporary problem leaves the step to be continued
    again at the next look; any other ends the attempt with the error."""
    if error.retryable:
        RunStep.objects.filter(pk=step.pk).update(continuing_since=None)
        delay = max(error.retry_after or 0, 2.0)
        Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now() + timedelta(seconds=delay))
        return
    finish_attempt(
        job=job,
        attempt=attempt,
        outcome=AttemptOutcome(
            status="failed",
            failure_kind=error.kind,
            retryable=error.retryable,
            error_code=error.code,
            error_message=error.message,
        ),
        actor="system:tools",
    )


def _user(actor):
    user, _ = actor_fields(actor)
    return user
