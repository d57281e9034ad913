"""Tool runs against the fake provider over real HTTP: the demo's "Resolve a support ticket"
job type, whose model looks an order up, leaves an internal note, then writes its answer.

The pump and the tool tasks are called in-process (the functions the django-q2 tasks call);
tests/jobs/test_worker.py covers real workers."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from demo.job_types import RESOLVE_TICKET
from demo.models import TicketNote
from jobs import execution, services
from jobs.job_types import RunLimits, register
from jobs.models import Artifact, RunStep, Status, ToolCall
from jobs.results import AttemptOutcome, RequestedCall
from tests.factories import WorkspaceFactory, member_of
from tests.jobs.test_provider_lane import pump_until, reload
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


# the demo's run without its email step (tests/jobs/test_tool_approvals.py has that)
NO_EMAIL = "[fake:tool_plan=lookup_order|add_internal_note]"


def submit_ticket(message=f"My shoes arrived wet. {NO_EMAIL}", reference="A-1042"):
    workspace = WorkspaceFactory()
    return services.submit_job(
        workspace=workspace,
        submitter=member_of(workspace),
        job_type="resolve_ticket",
        input={
            "order_reference": reference,
            "customer_email": "dana@example.test",
            "message": message,
        },
    )


def run_tasks(job):
    """Run the job's pending tool calls, as the workers' ``run_tool_call`` tasks would."""
    for pk in ToolCall.objects.filter(job=job, state=ToolCall.State.PENDING).values_list(
        "pk", flat=True
    ):
        execution.run_tool_call(pk)


def work_until(job, predicate, *, seconds=30):
    """Pump and run tool tasks until ``predicate(job)`` holds."""

    def turn():
        execution.run_pump(seconds=0.2, owner="test-pump")
        run_tasks(job)
        return predicate(reload(job))

    wait_for(turn, timeout=seconds, interval=0, message="the run to get there")
    return reload(job)


def events(job, kind):
    return list(job.events.filter(kind=kind).order_by("id"))


def test_a_three_step_run_completes_with_every_call_and_response_recorded(fake):
    job = submit_ticket()
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)

    steps = list(RunStep.objects.filter(job=job).order_by("number"))
    assert [step.number for step in steps] == [1, 2, 3]
    assert all(step.response_id and step.finished_at and step.cost > 0 for step in steps)
    calls = list(ToolCall.objects.filter(job=job).order_by("step__number"))
    assert [(c.step.number, c.name, c.state) for c in calls] == [
        (1, "lookup_order", ToolCall.State.SUCCEEDED),
        (2, "add_internal_note", ToolCall.State.SUCCEEDED),
    ]
    assert calls[0].arguments == {"order_reference": "A-1042"}  # taken from the input
    assert json.loads(calls[0].output)["status"] == "delivered"
    assert TicketNote.objects.filter(job=job).count() == 1

    attempt = job.attempts.get()
    assert attempt.provider_response_id == steps[-1].response_id
    assert attempt.cost == sum(step.cost for step in steps) == job.cost
    answer = job.artifacts.get(kind=Artifact.Kind.TEXT)
    assert "Trail running shoes" in answer.text  # the model saw the order it looked up
    assert len(events(job, "tool_calls")) == 2
    assert len(events(job, "continued")) == 2
    assert events(job, "tool_calls")[0].message == "The model asked to: Look up order A-1042."


def test_a_run_whose_tools_only_read_completes_with_no_person_involved(fake):
    workspace = WorkspaceFactory()
    job = services.submit_job(
        workspace=workspace,
        submitter=member_of(workspace),
        job_type="answer_order_question",
        input={"order_reference": "A-1043", "question": "Where is my parcel?"},
    )
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.COMPLETED)

    calls = list(ToolCall.objects.filter(job=job).order_by("step__number"))
    assert [(c.name, c.state, c.decided_by) for c in calls] == [
        ("lookup_order", ToolCall.State.SUCCEEDED, None),
        ("track_parcel", ToolCall.State.SUCCEEDED, None),
    ]
    assert job.review_state in ("", "not_required")
    assert not job.events.filter(kind="needs_review").exists()
    answer = job.artifacts.get(kind=Artifact.Kind.TEXT).text
    assert "You asked: “Where is my parcel?”" in answer
    assert "Regional hub" in answer  # the carrier's scan reached the model


def test_a_call_runs_once_however_often_its_task_runs(fake):
    job = submit_ticket()
    execution.dispatch_job(job.pk)
    work_until(job, lambda j: ToolCall.objects.filter(job=j, name="add_internal_note").exists())
    note = ToolCall.objects.get(job=job, name="add_internal_note")
    execution.run_tool_call(note.pk)
    execution.run_tool_call(note.pk)
    note.refresh_from_db()
    assert note.state == ToolCall.State.SUCCEEDED and note.tries == 1
    assert TicketNote.objects.filter(job=job).count() == 1


def test_a_tool_error_goes_back_to_the_model_as_the_calls_output(fake):
    job = submit_ticket(reference="A-9999")
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)
    lookup = ToolCall.objects.get(job=job, name="lookup_order")
    assert lookup.state == ToolCall.State.FAILED
    assert json.loads(lookup.output) == {"error": "There is no order A-9999."}
    answer = job.artifacts.get(kind=Artifact.Kind.TEXT)
    assert "There is no order A-9999." in answer.text


def test_a_call_to_an_unknown_tool_or_with_bad_arguments_gets_an_error_as_its_output(fake):
    job = submit_ticket(message="Hello. [fake:duration=30]")
    execution.dispatch_job(job.pk)
    attempt = reload(job).attempts.get()
    outcome = AttemptOutcome(
        status="completed",
        tool_calls=(
            RequestedCall("call_x", "delete_everything", "{}"),
            RequestedCall("call_y", "lookup_order", '{"order": 1}'),
        ),
    )
    step = services.record_step(job=job, attempt=attempt, outcome=outcome)
    unknown = ToolCall.objects.get(call_id="call_x")
    assert unknown.state == ToolCall.State.FAILED
    assert json.loads(unknown.output) == {"error": "There is no tool called 'delete_everything'."}
    misfit = ToolCall.objects.get(call_id="call_y")
    assert misfit.state == ToolCall.State.FAILED
    assert "do not fit the tool's schema" in json.loads(misfit.output)["error"]
    assert services.step_settled(step.pk)  # nothing to run: the model gets the errors
    # the same response seen again changes nothing
    assert services.record_step(job=job, attempt=attempt, outcome=outcome) == step
    assert ToolCall.objects.filter(job=job).count() == 2


def test_the_turn_limit_stops_the_run_with_a_clear_failure(fake):
    plan = "|".join(["lookup_order"] * 7)  # seven steps; the demo allows six turns
    job = submit_ticket(message=f"Where is it? [fake:tool_plan={plan}]")
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.FAILED)
    assert job.failure_kind == "tool"
    assert job.failure_reason == "The run stopped: it reached its limit of 6 model turns."
    assert RunStep.objects.filter(job=job).count() == 7
    assert job.cost == job.attempts.get().cost > 0  # the stopped step is paid for too


def test_the_tool_call_limit_stops_the_run(fake):
    parallel = ",".join(["lookup_order"] * 11)  # one step asking for eleven calls; ten allowed
    job = submit_ticket(message=f"Check all. [fake:tool_plan={parallel}]")
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.FAILED)
    assert job.failure_reason == "The run stopped: the model asked for more than 10 tool calls."
    assert not ToolCall.objects.filter(job=job).exists()  # none of them ran


@pytest.fixture
def tiny_budget():
    register(replace(RESOLVE_TICKET, limits=RunLimits(cost_usd="0.00000001")))
    yield
    register(RESOLVE_TICKET)


def test_a_run_over_its_cost_budget_stops(fake, tiny_budget):
    job = submit_ticket()
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.FAILED)
    assert (
        job.failure_reason == "The run stopped: it would cost more than its budget of $0.00000001."
    )


def test_the_run_replays_the_conversation_when_the_provider_refuses_to_continue(fake):
    job = submit_ticket(message=f"Wet shoes. {NO_EMAIL} [fake:reject_continuation=background]")
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)
    steps = list(RunStep.objects.filter(job=job).order_by("number"))
    assert [step.replayed for step in steps] == [False, True, True]
    continued = events(job, "continued")
    assert all("the whole conversation again" in event.message for event in continued)
    assert "Trail running shoes" in job.artifacts.get(kind=Artifact.Kind.TEXT).text


def test_an_interrupted_read_only_call_runs_again_and_a_write_does_not(fake):
    job = submit_ticket(message="Both at once. [fake:tool_plan=lookup_order,add_internal_note]")
    execution.dispatch_job(job.pk)
    pump_until(lambda: ToolCall.objects.filter(job=job).exists())  # the calls' tasks don't run
    calls = ToolCall.objects.filter(job=job)
    # both were taken by workers that died: running, started long ago
    for call in calls:
        assert services.start_tool_call(call.pk) is not None
    calls.update(started_at=timezone.now() - timedelta(hours=1))
    execution.drive_step(calls[0].step)
    lookup = ToolCall.objects.get(job=job, name="lookup_order")
    note = ToolCall.objects.get(job=job, name="add_internal_note")
    assert note.state == ToolCall.State.FAILED
    assert "whether it took effect is unknown" in note.output
    assert lookup.state == ToolCall.State.PENDING  # runs again
    job = work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)
    assert TicketNote.objects.filter(job=job).count() == 0


def test_a_retry_resumes_after_the_finished_steps_and_runs_none_of_their_calls_again(fake):
    job = submit_ticket()
    submitter = job.submitter
    execution.dispatch_job(job.pk)
    noted = ToolCall.State.SUCCEEDED
    work_until(job, lambda j: ToolCall.objects.filter(job=j, state=noted).count() == 2)
    services.cancel_job(job=reload(job), actor=submitter)
    execution.cancel_at_provider(job.pk)  # the task the cancel enqueues
    services.retry_job(job=reload(job), actor=submitter)
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)

    assert job.attempt_count == 2
    assert ToolCall.objects.filter(job=job).count() == 2  # the lookup and the note, once each
    assert TicketNote.objects.filter(job=job).count() == 1
    second = job.attempts.get(number=2)
    assert not ToolCall.objects.filter(step__attempt=second).exists()  # straight to the answer
    answer = job.artifacts.filter(kind=Artifact.Kind.TEXT, is_stale=False).get()
    assert "Trail running shoes" in answer.text  # the model has the first attempt's lookup


def test_a_continuation_lost_around_its_create_is_not_made_again_a_new_attempt_resumes(fake):
    job = submit_ticket()
    execution.dispatch_job(job.pk)
    pump_until(lambda: ToolCall.objects.filter(job=job).exists())  # step 1 asks for the lookup
    lookup = ToolCall.objects.get(job=job)
    started = services.start_tool_call(lookup.pk)
    services.finish_tool_call(started, output='{"status": "delivered"}')
    # a worker marks the continuation, then dies around its create
    assert services.begin_continuation(job.pk) is not None
    RunStep.objects.filter(job=job).update(continuing_since=timezone.now() - timedelta(minutes=5))

    execution.continue_run(job.pk)  # the next driver finds the marker stale
    first = job.attempts.get(number=1)
    assert first.state == "abandoned"
    assert reload(job).status == Status.QUEUED
    assert RunStep.objects.filter(attempt=first).count() == 1  # step 1 was not continued again
    execution.dispatch_job(job.pk)
    job = work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)
    assert job.attempt_count == 2
    assert ToolCall.objects.filter(job=job, name="lookup_order").count() == 1  # not run again
    assert ToolCall.objects.get(job=job, name="add_internal_note").step.attempt.number == 2
    assert job.events.filter(kind="attempt_lost").count() == 1
