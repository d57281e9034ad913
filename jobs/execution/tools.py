"""Tool runs on the background lane: run the calls a step asks for, then continue the run.

A response that ends with ``function_call`` items is a step (``services.record_step``). Each
pending call runs in its own task (``run_tool_call``), at most once: the task that moves the
call from pending to running is the only one that runs it. The task that settles a step's last
call creates the continuation at once (``continue_run``): the provider gets every call's output
with ``previous_response_id``, or, where it refuses to continue a background response that way,
the whole conversation again (recorded on the step as ``replayed``).

A retry (a new attempt) starts after the steps earlier attempts finished: its first create
carries their calls and outputs (``finished_conversation``), so a call that ran is never run
again.

Tasks can be lost (a killed worker). The pump looks at a step's response again after
``STEP_SAFETY_SECONDS`` and drives the step on itself (``advance_run``): pending calls are
enqueued again, a call left running past its tool's timeout is handled as interrupted, and a
settled step is continued. The continuation is marked on the step under the job's row lock
before its create, so two drivers never both create it.
"""

import json
import logging
from datetime import timedelta

from django.utils import timezone

from .. import services
from ..job_types import ToolError, get_job_type
from ..models import SETTLED_CALL_STATES, RunStep, ToolCall
from ..queue import enqueue
from . import provider
from .pacing import first_look, next_look
from .provider import ContinuationRefused, ProviderError

log = logging.getLogger(__name__)

# A running call is treated as interrupted this long after its tool's timeout.
INTERRUPT_GRACE = timedelta(seconds=30)


def advance_run(job, attempt, outcome):
    """The pump saw a completed response that asks for tool calls: record the step (once) and
    drive it on."""
    step = services.record_step(job=job, attempt=attempt, outcome=outcome)
    if step is not None:
        drive_step(step)


def drive_step(step):
    """Enqueue the step's pending calls, deal with interrupted ones, and continue the run once
    every call has its output."""
    spec = get_job_type(step.job.job_type)
    now = timezone.now()
    for call in ToolCall.objects.filter(step=step).exclude(state__in=SETTLED_CALL_STATES):
        if call.state == ToolCall.State.PENDING:
            enqueue("jobs.tasks.run_tool_call", call.pk)
        elif call.state == ToolCall.State.RUNNING:
            tool = spec.tool(call.name)
            limit = (tool.timeout if tool else timedelta(0)) + INTERRUPT_GRACE
            late = call.started_at and call.started_at < now - limit
            if late and services.interrupt_tool_call(call):  # a read-only call runs again
                enqueue("jobs.tasks.run_tool_call", call.pk)
    if services.step_settled(step.pk):
        continue_run(step.job_id)


def run_tool_call(call_pk):
    """Run one pending call, at most once, and continue the run if it was the step's last."""
    call = services.start_tool_call(call_pk)
    if call is None:
        return
    tool = get_job_type(call.job.job_type).tool(call.name)
    output, error = "", ""
    try:
        result = tool.handler(dict(call.arguments), call.job, call_id=call.call_id)
        output = json.dumps(result, default=str)
    except ToolError as exc:
        error = str(exc) or "The tool failed."
    except Exception:
        log.exception("tool %s failed on call %s", call.name, call.call_id)
        error = "The tool failed unexpectedly."
    again = bool(error) and tool.retry_errors and call.tries < tool.tries
    settled = services.finish_tool_call(call, output=output, error=error, again=again)
    if again:
        enqueue("jobs.tasks.run_tool_call", call.pk)
    elif settled:
        continue_run(call.job_id)


def continue_run(job_id):
    """Create the continuation of the job's settled step, once (see the module docstring)."""
    ready = services.begin_continuation(job_id)
    if ready is None:
        return
    job, attempt, step = ready
    spec = get_job_type(job.job_type)
    request = dict(
        job_id=job.pk,
        attempt_number=attempt.number,
        step=step.number + 1,
        model=job.model,
        instructions=attempt.instructions,
        tools=spec.provider_tools(),
    )
    outputs = [_output_item(call) for call in step.calls.all()]
    replayed = False
    try:
        try:
            dispatch = provider.continue_response(
                **request, previous=step.response_id, items=outputs
            )
        except ContinuationRefused:
            replayed = True
            history = finished_conversation(job, before=attempt) + conversation(attempt)
            dispatch = provider.continue_response(**request, previous=None, items=history)
    except ProviderError as error:
        services.continuation_failed(job=job, attempt=attempt, step=step, error=error)
        return
    look = next_look(0, first_look(job.job_type))
    services.record_continuation(
        job=job,
        attempt=attempt,
        step=step,
        dispatch=dispatch,
        replayed=replayed,
        next_poll_at=timezone.now() + timedelta(seconds=look),
    )


def _output_item(call):
    return {"type": "function_call_output", "call_id": call.call_id, "output": call.output}


def conversation(attempt):
    """Every call of the attempt's run so far and its output, as input items for a replay."""
    return _items(RunStep.objects.filter(attempt=attempt))


def finished_conversation(job, *, before):
    """The calls of every finished step of the job's attempts before ``before`` (all of a
    step's calls have their output) and their outputs, as input items: where a retry starts."""
    steps = RunStep.objects.filter(job=job, attempt__number__lt=before.number).order_by(
        "attempt__number", "number"
    )
    return _items(step for step in steps.prefetch_related("calls") if _finished(step))


def _finished(step):
    calls = list(step.calls.all())
    return bool(calls) and all(call.has_output for call in calls)


def _items(steps):
    items = []
    for step in steps:
        calls = list(step.calls.all())
        for call in calls:
            arguments = call.raw_arguments or json.dumps(call.arguments)
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": arguments,
                }
            )
        items += [_output_item(call) for call in calls]
    return items
