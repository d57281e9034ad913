"""The provider lane in-process against the fake OpenAI server over real HTTP.

These drive the same functions the django-q2 tasks call (dispatch, the pump, streaming, sync,
cancel, webhooks) without a worker process; tests/jobs/test_worker.py runs them in a real
qcluster.
"""

import re
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs import execution, explain, services
from jobs.execution import circuit, provider
from jobs.execution.claims import claim_due
from jobs.job_types import get_job_type
from jobs.models import Attempt, CircuitState, Job, Priority, Status
from tests.factories import WorkspaceFactory, member_of
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def submit(job_type="summarize_document", directive="", priority=Priority.NORMAL, **fields):
    workspace = WorkspaceFactory()
    user = member_of(workspace)
    inputs = {
        "summarize_document": {"title": "Report", "document": f"Quarterly numbers. {directive}"},
        "draft_support_reply": {
            "customer_name": "Ada",
            "tone": "friendly",
            "message": f"Where is my parcel? {directive}",
        },
        "issue_refund": {
            "order_reference": "A-1",
            "customer_email": "a@b.co",
            "amount": "5",
            "reason": f"Broken. {directive}",
        },
        "tag_ticket": {"subject": "Login", "body": f"Cannot log in. {directive}"},
    }[job_type]
    inputs.update(fields)
    return services.submit_job(
        workspace=workspace, submitter=user, job_type=job_type, input=inputs, priority=priority
    )


def pump_until(predicate, *, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        execution.run_pump(seconds=0.3, owner="test-pump")
        if predicate():
            return
    raise AssertionError("the job did not reach the expected state in time")


def provider_status(fake, job):
    """The status the fake provider reports for the job's first attempt (``gone`` once it
    dropped the response)."""
    import openai

    response_id = reload(job).attempts.get(number=1).provider_response_id
    try:
        return fake.client().responses.retrieve(response_id).status
    except openai.NotFoundError:
        return "gone"


def finished_at_provider(fake, *jobs, status="completed"):
    """Wait until the provider reports each job's response ``status``: finished there, not yet
    looked at here."""
    wait_for(
        lambda: all(provider_status(fake, job) == status for job in jobs),
        timeout=30,
        interval=0.05,
        message=f"the provider to report {status}",
    )


def instructions_for(job):
    return get_job_type(job.job_type).render_instructions(job.input)


def reload(job):
    return Job.objects.get(pk=job.pk)


def test_background_job_completes_with_output_usage_cost_and_events(fake):
    job = submit()
    execution.dispatch_job(job.pk)
    attempt = Attempt.objects.get(job=job)
    assert attempt.provider_response_id.startswith("resp_")
    assert attempt.state == Attempt.State.IN_FLIGHT
    pump_until(lambda: reload(job).status == Status.COMPLETED)
    job = reload(job)
    attempt.refresh_from_db()
    assert job.review_state == "not_required"
    assert job.artifacts.get(kind="text").text  # the model's output is stored
    assert attempt.input_tokens > 0 and attempt.output_tokens > 0
    assert job.cost == attempt.cost > 0
    kinds = list(job.events.values_list("kind", flat=True))
    assert kinds[:3] == ["submitted", "attempt_started", "dispatched"]
    assert kinds[-1] == "completed"


def test_draft_goes_to_review_after_the_model_finishes(fake):
    job = submit("issue_refund")
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.NEEDS_REVIEW)
    assert reload(job).review_state == "pending"


@pytest.mark.parametrize(
    ("directive", "kind", "retryable", "partial"),
    [
        ("[fake:outcome=failed:invalid_prompt]", "input", False, False),
        ("[fake:outcome=failed:bio_policy]", "policy", False, False),
        ("[fake:outcome=incomplete:max_output_tokens]", "provider", False, True),
        ("[fake:outcome=incomplete:content_filter]", "policy", False, True),
    ],
)
def test_provider_failed_and_incomplete_fail_with_a_kind(fake, directive, kind, retryable, partial):
    job = submit(directive=directive)
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.FAILED)
    job = reload(job)
    assert (job.failure_kind, job.failure_retryable) == (kind, retryable)
    assert job.has_partial_output == partial
    assert job.failure_reason and "resp_" not in job.failure_reason
    assert job.attempts.count() == 1


def test_transient_provider_failure_retries_as_a_new_attempt(fake):
    job = submit(directive="[fake:outcome=failed:server_error]")
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).attempts.count() >= 2)
    assert reload(job).events.filter(kind="retry_scheduled").exists()


def test_429_storm_on_create_waits_for_retry_after_then_succeeds(fake):
    job = submit(directive="[fake:create_errors=429,429;retry_after=1]")
    execution.dispatch_job(job.pk)
    job = reload(job)
    first = job.attempts.get(number=1)
    assert (first.state, first.error_code) == ("failed", "rate_limit_exceeded")
    assert (job.next_poll_at - first.finished_at).total_seconds() >= 1.0  # honoured Retry-After
    pump_until(lambda: reload(job).status == Status.COMPLETED, seconds=20)
    job = reload(job)
    assert job.attempts.count() == 3
    created = [r for r in fake.log() if r["path"] == "/v1/responses" and r["method"] == "POST"]
    assert [r["status"] for r in created] == [429, 429, 200]
    gaps = [(b["time"] - a["time"]) for a, b in zip(created, created[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps), gaps


def test_one_pump_batch_sends_its_creates_together_and_keeps_each_outcome_apart(fake):
    fine = [submit() for _ in range(5)]
    limited = submit(directive="[fake:create_errors=429;retry_after=2]")
    broken = submit(directive="[fake:create_errors=500]")
    claimed = execution.claim_due("test-pump", limit=10)
    assert len(claimed) == 7
    execution.process_claimed(claimed, "test-pump")
    for job in fine:
        attempt = reload(job).attempts.get()
        assert attempt.state == Attempt.State.IN_FLIGHT and attempt.provider_response_id
        assert reload(job).lease_owner == ""  # released for the poller
    for job, code in [(limited, "rate_limit_exceeded"), (broken, "500")]:
        job = reload(job)
        attempt = job.attempts.get()
        assert (attempt.state, attempt.error_kind, attempt.error_code) == (
            "failed",
            "provider",
            code,
        )
        assert job.status == Status.QUEUED and job.events.filter(kind="retry_scheduled").exists()
    waited = reload(limited).next_poll_at - reload(limited).attempts.get().finished_at
    assert waited.total_seconds() >= 2.0  # the 429's Retry-After, not the default backoff
    ids = list(
        Attempt.objects.exclude(provider_response_id=None).values_list(
            "provider_response_id", flat=True
        )
    )
    assert len(ids) == len(set(ids)) == 5
    pump_until(lambda: {reload(j).status for j in [*fine, limited, broken]} == {Status.COMPLETED})


def test_a_burst_of_new_work_is_started_a_turn_at_a_time_behind_due_polls(fake, settings):
    settings.PUMP_STARTS_PER_TURN = 3
    in_flight = submit(directive="[fake:duration=5]")
    execution.dispatch_job(in_flight.pk)
    Job.objects.filter(pk=in_flight.pk).update(next_poll_at=timezone.now())
    burst = [submit() for _ in range(5)]
    claimed = execution.claim_due("test-pump", limit=10)
    assert len(claimed) == 6
    before = timezone.now()
    execution.process_claimed(claimed, "test-pump")
    started = [job for job in burst if reload(job).attempts.exists()]
    waiting = [reload(job) for job in burst if not reload(job).attempts.exists()]
    assert len(started) == 3 and len(waiting) == 2
    for job in waiting:  # released, due again only after the poll that was already due
        assert job.lease_owner == "" and job.next_poll_at > before
    assert reload(in_flight).attempts.get().polls == 1  # the due poll was not crowded out
    pump_until(lambda: {reload(j).status for j in burst} == {Status.COMPLETED})


def test_one_job_that_cannot_start_does_not_stop_the_pump_or_its_batch(fake):
    retired = submit()
    Job.objects.filter(pk=retired.pk).update(job_type="retired_type")  # gone from the registry
    fine = submit()
    pump_until(lambda: reload(fine).status == Status.COMPLETED)
    assert reload(retired).status == Status.QUEUED and not reload(retired).attempts.exists()


def test_500_then_success(fake):
    job = submit(directive="[fake:create_errors=500]")
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.COMPLETED)
    states = list(reload(job).attempts.values_list("state", "error_kind"))
    assert states == [("failed", "provider"), ("succeeded", "")]


def test_timeout_is_classified_and_retried(fake, settings):
    settings.PROVIDER_TIMEOUT = 0.5
    from jobs.execution.provider.client import reset_clients

    reset_clients()
    fake.configure(faults={"slow": 1.0}, slow_seconds=2)
    job = submit()
    execution.dispatch_job(job.pk)
    attempt = reload(job).attempts.get()
    assert (attempt.error_kind, attempt.error_code) == ("timeout", "timeout")
    assert reload(job).status == Status.QUEUED  # a new attempt is scheduled
    fake.configure(faults={})
    pump_until(lambda: reload(job).status == Status.COMPLETED, seconds=20)


def test_cancel_mid_run_propagates_to_the_provider(fake):
    job = submit(directive="[fake:duration=30]")
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.RUNNING)
    services.cancel_job(job=job, actor=job.submitter)
    execution.cancel_at_provider(job.pk)
    response_id = reload(job).attempts.get().provider_response_id
    assert fake.client().responses.retrieve(response_id).status == "cancelled"
    assert reload(job).status == Status.CANCELED


def test_a_cancel_the_provider_confirms_reads_as_a_stop_not_a_late_result(fake):
    job = submit(directive="[fake:duration=30]")
    execution.dispatch_job(job.pk)
    pump_until(lambda: reload(job).status == Status.RUNNING)
    services.cancel_job(job=job, actor=job.submitter)
    execution.cancel_at_provider(job.pk)
    pump_until(lambda: reload(job).attempts.get().state == Attempt.State.FAILED, seconds=20)
    job = reload(job)
    assert job.events.filter(kind="provider_stopped").count() == 1
    assert not job.events.filter(kind="stale_result").exists()
    attempt = job.attempts.get()
    assert explain.attempt_outcome(attempt, job) == "Stopped: the job was canceled"
    assert not explain.is_late_result(attempt)


def test_cancel_racing_completion_keeps_result_stale(fake):
    job = submit(directive="[fake:duration=0.1]")
    execution.dispatch_job(job.pk)
    finished_at_provider(fake, job)  # not yet polled
    services.cancel_job(job=job, actor=job.submitter)
    execution.cancel_at_provider(job.pk)  # finds the result after the cancel
    execution.run_pump(seconds=0.3, owner="test-pump")
    job = reload(job)
    assert job.status == Status.CANCELED
    assert list(job.artifacts.values_list("is_stale", flat=True)) == [True]
    assert job.events.filter(kind="stale_result").count() == 1
    assert explain.is_late_result(job.attempts.get())  # the attempts table says "(late)"
    assert not job.events.filter(kind__in=["completed", "needs_review"]).exists()


def test_deadline_expiry_expires_and_cancels_at_provider(fake):
    job = submit(directive="[fake:duration=30]")
    execution.dispatch_job(job.pk)
    Job.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert execution.sweep_expired() == 1
    execution.cancel_at_provider(job.pk)
    job = reload(job)
    assert (job.status, job.failure_kind) == (Status.EXPIRED, "timeout")
    response_id = job.attempts.get().provider_response_id
    assert fake.client().responses.retrieve(response_id).status == "cancelled"


def test_vanished_response_fails_with_a_clear_reason(fake):
    fake.configure(retention_seconds=0.2)
    job = submit(directive="[fake:duration=0.1]")
    execution.dispatch_job(job.pk)
    finished_at_provider(fake, job, status="gone")
    pump_until(lambda: reload(job).status == Status.FAILED)
    job = reload(job)
    assert job.failure_kind == "provider"
    assert "no longer available" in job.failure_reason


def test_worker_crash_between_create_and_save_starts_a_new_attempt_and_adopts_orphan(fake):
    job = submit(directive="[fake:duration=0.2]")
    job = Job.objects.get(pk=job.pk)
    lost = services.begin_attempt(job=job, instructions="Summarize.")
    orphan = provider.create_response(
        job_id=job.pk, attempt_number=lost.number, model=job.model, instructions="Summarize."
    )
    # the worker "dies" here: the response id was never saved and its lease runs out
    past = timezone.now() - timedelta(minutes=5)
    Attempt.objects.filter(pk=lost.pk).update(started_at=past)
    Job.objects.filter(pk=job.pk).update(lease_owner="dead", lease_expires_at=past)
    pump_until(lambda: reload(job).status == Status.COMPLETED)
    job = reload(job)
    assert job.events.filter(kind="attempt_lost").count() == 1
    assert list(job.attempts.values_list("state", flat=True)) == ["abandoned", "succeeded"]
    assert execution.adopt_orphan(orphan.response_id) == "stale"
    lost.refresh_from_db()
    assert lost.provider_response_id == orphan.response_id and lost.is_stale
    assert job.artifacts.filter(is_stale=False).count() == 1  # released once, never twice


def test_stream_lane_saves_partial_text_in_batches_then_the_final_answer(fake):
    job = submit("draft_support_reply", directive="[fake:duration=1;chunk_chars=3]")
    job = Job.objects.get(pk=job.pk)
    attempt = services.begin_attempt(job=job, instructions=instructions_for(job))
    Job.objects.filter(pk=job.pk).update(lease_owner="handover")
    assert execution.stream_job(job.pk, attempt.pk, "handover") == "finished"
    job = reload(job)
    assert job.status == Status.NEEDS_REVIEW
    parts = job.events.filter(kind="partial_output").order_by("id")
    streamed = "".join(e.data["text"] for e in parts)
    final = job.artifacts.get(kind="text").text
    assert streamed == final
    deltas = len(final) / 3
    assert 1 <= parts.count() < deltas / 2  # batched, not one row per delta


def test_stream_resumes_from_cursor_without_loss_or_duplicates(fake):
    job = submit(
        "draft_support_reply", directive="[fake:duration=1.5;chunk_chars=4;stream_drop_after=12]"
    )
    job = Job.objects.get(pk=job.pk)
    attempt = services.begin_attempt(job=job, instructions=instructions_for(job))
    Job.objects.filter(pk=job.pk).update(lease_owner="handover")
    assert execution.stream_job(job.pk, attempt.pk, "handover") == "finished"
    job = reload(job)
    streamed = "".join(
        e.data["text"] for e in job.events.filter(kind="partial_output").order_by("id")
    )
    assert streamed == job.artifacts.get(kind="text").text
    resumes = [r for r in fake.log() if r["path"].startswith("/v1/responses/resp_")]
    assert resumes, "the stream was resumed with a retrieve"


def test_a_stream_whose_response_was_cancelled_elsewhere_ends_the_job_instead_of_looping(fake):
    """Someone cancels the response at the provider (its dashboard, another tool). Its stream
    then stops without a terminal event, so every resume fails; the stream task reads the
    response whole and fails the job with the provider's word, instead of handing the job
    back to a stream that fails the same way for ever."""
    job = submit("draft_support_reply", directive="[fake:duration=3;chunk_chars=3]")
    job = Job.objects.get(pk=job.pk)
    attempt = services.begin_attempt(job=job, instructions=instructions_for(job))
    Job.objects.filter(pk=job.pk).update(lease_owner="handover")
    # a stopping worker hands the stream back after its first event (the response exists)
    assert execution.stream_job(job.pk, attempt.pk, "handover", stop=lambda: True) == (
        "handed-back"
    )
    response_id = Attempt.objects.get(pk=attempt.pk).provider_response_id
    assert response_id
    fake.client(api_key="test").responses.cancel(response_id)

    assert execution.stream_job(job.pk, attempt.pk) == "finished-from-retrieve"
    job = reload(job)
    assert job.status == Status.FAILED
    assert job.failure_reason == "The work was stopped at the AI provider."
    assert job.attempts.count() == 1


def test_sync_lane_answers_inside_the_request(fake):
    job = submit("tag_ticket")
    Job.objects.filter(pk=job.pk).update(lane="sync")
    job = execution.run_sync(reload(job))
    assert job.status in (Status.COMPLETED, Status.NEEDS_REVIEW)
    assert job.attempts.get().state == "succeeded"


def _sync_ticket(run_by):
    workspace = WorkspaceFactory()
    return services.submit_job(
        workspace=workspace,
        submitter=member_of(workspace),
        job_type="tag_ticket",
        input={"subject": "Late", "body": "Where is my order?"},
        run_by=run_by,
    )


def test_a_sync_job_is_held_for_its_request_so_no_worker_starts_it_first(fake):
    job = _sync_ticket(run_by="sync:request-1")
    assert job.lane == "sync"
    assert claim_due("pump:test") == []  # due, but the request holds it
    job = execution.run_sync(job, owner="sync:request-1")
    assert job.status in (Status.COMPLETED, Status.NEEDS_REVIEW)
    attempt = job.attempts.get()
    assert attempt.state == "succeeded" and attempt.polls == 0  # answered in the request


def test_a_sync_job_whose_request_died_is_started_by_a_worker_after_the_hold(fake, settings):
    job = _sync_ticket(run_by="sync:request-that-died")
    hold = settings.SYNC_LANE_TIMEOUT + settings.POLL_LEASE_SECONDS
    just_before = timezone.now() + timedelta(seconds=hold - 2)
    assert claim_due("pump:test", now=just_before) == []
    after = timezone.now() + timedelta(seconds=hold + 1)
    assert [j.pk for j in claim_due("pump:test", now=after)] == [job.pk]


def test_sync_lane_timeout_falls_back_to_background(fake, settings):
    settings.SYNC_LANE_TIMEOUT = 0.5
    job = submit("tag_ticket", directive="[fake:duration=2]")
    Job.objects.filter(pk=job.pk).update(lane="sync")
    job = execution.run_sync(reload(job))
    assert job.lane == "background"
    assert job.events.filter(kind="lane_changed").count() == 1
    pump_until(lambda: reload(job).status in (Status.COMPLETED, Status.NEEDS_REVIEW), seconds=20)


def test_circuit_opens_on_errors_holds_dispatch_and_lets_high_priority_first(fake, settings):
    settings.CIRCUIT_MIN_CALLS = 5
    fake.configure(faults={"503": 1.0})
    jobs = [submit() for _ in range(6)]
    for job in jobs:
        execution.dispatch_job(job.pk)
    assert circuit.state() == "open"
    held = submit()
    execution.dispatch_job(held.pk)
    held = reload(held)
    assert held.status == Status.QUEUED and "having trouble" in held.wait_reason
    assert not held.attempts.exists()
    # the open window ends: half-open lets probes through, high priority first
    fake.configure(faults={})
    CircuitState.objects.update(opened_until=timezone.now() - timedelta(seconds=1))
    urgent = submit(priority=Priority.HIGH)
    Job.objects.filter(status=Status.QUEUED).update(next_poll_at=timezone.now())
    owner = execution.worker_name("test")
    claimed = execution.claim_due(owner, limit=1)
    assert claimed[0].pk == urgent.pk
    execution.process_claimed(claimed, owner)
    assert circuit.state() == "closed"


def batch_statements(queries):
    """The statements that do a batch's work: those on jobs, attempts, events, artifacts,
    notifications, review policies and the task queue. Transaction control and the circuit
    breaker's per-second call counts are left out: a turn that starts a new second's bucket
    inserts its row in a transaction of its own, so those depend on the clock, not on the
    batch."""
    work = re.compile(
        r'"(jobs_job|jobs_attempt|jobs_jobevent|jobs_artifact|notifications_\w+|review_\w+|django_q_\w+)"'
    )
    return [query for query in queries.captured_queries if work.search(query["sql"])]


def test_starting_a_batch_costs_the_same_statements_for_4_jobs_as_for_16(fake, settings):
    """A pump turn opens its attempts, records the provider's answers and writes their audit
    events in one go: the statement count must not grow with the batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.PUMP_STARTS_PER_TURN = 16
    counts = []
    for size in (1, 4, 16):  # the first turn also creates the circuit breaker's rows
        batch = [submit() for _ in range(size)]
        claimed = execution.claim_due("test-pump", limit=size, job_ids=[j.pk for j in batch])
        with CaptureQueriesContext(connection) as queries:
            execution.process_claimed(claimed, "test-pump")
        counts.append(len(batch_statements(queries)))
        for job in map(reload, batch):
            attempt = job.attempts.get()
            assert attempt.state == Attempt.State.IN_FLIGHT and attempt.provider_response_id
            assert job.lease_owner == "" and job.started_at is not None
            kinds = list(job.events.values_list("kind", flat=True))
            assert kinds == ["submitted", "attempt_started", "dispatched"]
    assert counts[1] == counts[2], f"statements for 4 and 16 starts: {counts[1:]}"


def started_and_due(size, directive="[fake:duration=60;queued_for=0.3]"):
    """``size`` new jobs, started at the fake by one pump turn while it held them queued, and
    due for a look again now that the model works on each."""
    batch = [submit(directive=directive) for _ in range(size)]
    ids = [job.pk for job in batch]
    execution.process_claimed(execution.claim_due("test-pump", job_ids=ids), "test-pump")
    responses = [Attempt.objects.get(job_id=i).provider_response_id for i in ids]
    wait_for(
        lambda: all(s.is_working for s in provider.retrieve_many(responses).values()),
        timeout=10,
        interval=0.05,
        message="the fake starts the model on each",
    )
    Job.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())
    return batch, ids


def test_a_batch_seen_working_starts_running_in_the_same_statements_for_4_jobs_as_for_16(
    fake, settings
):
    """A pump turn moves the jobs its retrieves found working from queued to running together:
    each through its FSM transition with one event, in a statement count that does not grow
    with the batch."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.PUMP_STARTS_PER_TURN = 16
    counts = []
    for size in (1, 4, 16):  # the first turn also creates the circuit breaker's rows
        batch, ids = started_and_due(size)
        assert {job.status for job in map(reload, batch)} == {Status.QUEUED}
        claimed = execution.claim_due("test-pump", job_ids=ids)
        turn_started = timezone.now()
        with CaptureQueriesContext(connection) as queries:
            execution.process_claimed(claimed, "test-pump")
        counts.append(len(batch_statements(queries)))
        for job in map(reload, batch):
            assert job.status == Status.RUNNING and job.started_at is not None
            # released, with its next look set later than the turn that saw it working
            assert job.lease_owner == "" and job.next_poll_at > turn_started
            [event] = job.events.filter(kind="running")
            assert (event.from_status, event.to_status) == (Status.QUEUED, Status.RUNNING)
    assert counts[1] == counts[2], f"statements for 4 and 16 jobs: {counts[1:]}"


def test_a_turn_whose_leases_ran_long_polls_only_the_jobs_still_its_own(fake):
    """A turn that took a while (a slow start of its new jobs) renews its leases before it
    polls; a job whose lease lapsed and that another pump took meanwhile is left to that pump,
    so no response is retrieved by two pumps at once."""
    batch, ids = started_and_due(2)
    claimed = execution.claim_due("slow-pump", job_ids=ids)
    for job in claimed:  # claimed 10 s ago, as far as the turn knows
        job.lease_expires_at -= timedelta(seconds=10)
    mine, taken = sorted(claimed, key=lambda job: job.pk != batch[0].pk)
    later = timezone.now() + timedelta(seconds=30)
    Job.objects.filter(pk=taken.pk).update(lease_owner="other-pump", lease_expires_at=later)
    execution.process_claimed(claimed, "slow-pump")
    assert Attempt.objects.get(job_id=mine.pk).polls == 1
    assert Attempt.objects.get(job_id=taken.pk).polls == 0
    assert reload(taken).lease_owner == "other-pump"


def test_a_pump_turn_polls_without_reading_job_inputs_or_attempt_prompts(fake):
    """Polling needs ids and times: a turn must not drag every in-flight job's document (its
    input and the prompt rendered from it) out of the database a few times a minute."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    batch, ids = started_and_due(3)
    assert all(Attempt.objects.get(job_id=i).instructions for i in ids)  # started from input
    with CaptureQueriesContext(connection) as queries:
        execution.run_pump(seconds=0.3, owner="test-pump")
    assert {job.status for job in map(reload, batch)} == {Status.RUNNING}  # polled
    bulky = ('"jobs_job"."input"', '"jobs_attempt"."instructions"', '"jobs_attempt"."output"')
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("SELECT")]
    assert not [sql for sql in reads if any(column in sql for column in bulky)]


def test_finishing_a_batch_costs_the_same_statements_for_4_jobs_as_for_16(fake, settings):
    """A pump turn applies the plain completions of its batch together: usage and cost on
    attempts and jobs, the output artifacts, each job's FSM transition and event, and the
    submitters' notifications, in a statement count that does not grow with the batch."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import Notification

    settings.PUMP_STARTS_PER_TURN = 16
    counts = []
    for size in (1, 4, 16):  # the first turn also creates the circuit breaker's rows
        batch = [submit(directive="[fake:duration=0.3]") for _ in range(size)]
        get_user_model().objects.update(email="")  # an email is one enqueued task per job
        ids = [job.pk for job in batch]
        execution.process_claimed(execution.claim_due("test-pump", job_ids=ids), "test-pump")
        finished_at_provider(fake, *batch)
        Job.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())
        claimed = execution.claim_due("test-pump", job_ids=ids)
        with CaptureQueriesContext(connection) as queries:
            execution.process_claimed(claimed, "test-pump")
        counts.append(len(batch_statements(queries)))
        for job in map(reload, batch):
            attempt = job.attempts.get()
            assert job.status == Status.COMPLETED and job.lease_owner == ""
            assert attempt.state == Attempt.State.SUCCEEDED and attempt.cost > 0
            assert job.cost == attempt.cost and job.output_tokens == attempt.output_tokens
            assert job.artifacts.get(kind="text").text
            assert job.events.filter(kind="completed").count() == 1
            assert Notification.objects.filter(job=job, topic="completed").count() == 1
    assert counts[1] == counts[2], f"statements for 4 and 16 finishes: {counts[1:]}"


def test_a_pump_keeps_polling_until_its_queued_successor_takes_the_slot_over(fake, settings):
    """A pump enqueues its successor halfway and keeps going past its run time while the
    successor waits in the task queue; when the successor starts, it takes the slot at the
    running pump's next heartbeat. A start without a successor's role (a one-off run) does not
    wait for a live slot."""
    import threading

    from django.db import connections

    from jobs.models import PumpSlot

    settings.PUMP_STALE_SECONDS = 2  # a heartbeat every half second
    settings.PUMP_MAX_SECONDS = 4
    job = submit(directive="[fake:duration=60]")
    results = {}
    queued = threading.Event()

    def run(name, seconds, hand_over=None):
        try:
            results[name] = execution.run_pump(seconds=seconds, owner=name, hand_over=hand_over)
        finally:
            connections.close_all()

    started = timezone.now()
    first = threading.Thread(target=run, args=("first", 1.0, queued.set))
    first.start()
    assert queued.wait(5), "the pump did not enqueue its successor halfway"
    # the successor sits in a slow queue: the pump beats on well past its run time (1 s)
    wait_for(
        lambda: PumpSlot.objects.get(slot=0).heartbeat_at > started + timedelta(seconds=2),
        timeout=10,
        message="a heartbeat two seconds after the pump started",
    )
    assert first.is_alive(), "the pump stopped although its successor had not started"
    assert PumpSlot.objects.get(slot=0).owner == "first"

    second = threading.Thread(target=run, args=("second", 1.0, lambda: None))
    second.start()
    try:
        first.join(5)
        assert not first.is_alive() and results["first"] is not None
        wait_for(lambda: PumpSlot.objects.get(slot=0).owner == "second", timeout=2, interval=0.05)
        handed_over_at = reload(job).attempts.get().polls  # from here only the successor polls
        assert execution.run_pump(seconds=1.0, owner="third") is None
    finally:
        second.join(10)  # the successor runs its whole turn: up to PUMP_MAX_SECONDS
    assert results["second"] is not None
    assert reload(job).attempts.get().polls > handed_over_at  # polled after the handover too


def test_a_quick_job_that_outlasts_its_wait_says_it_continues_in_the_background(
    fake, settings, client
):
    """The sync lane's form waits for the answer; when the model takes longer than the budget,
    the person lands on the job's page and is told why it is not done yet."""
    settings.SYNC_LANE_TIMEOUT = 0.5
    workspace = WorkspaceFactory()
    client.force_login(member_of(workspace))
    url = reverse("job-submit", args=["tag_ticket"])
    assert "Waiting for the answer (up to 0.5 s)" in client.get(url).content.decode()
    response = client.post(
        url,
        {"subject": "Late", "body": "Where is it? [fake:duration=2]", "submit_token": "b" * 32},
        follow=True,
    )
    job = Job.objects.get(workspace=workspace)
    assert job.lane == "background" and job.status in (Status.QUEUED, Status.RUNNING)
    notices = [str(m) for m in response.context["messages"]]
    assert notices == [
        "The model did not answer within 0.5 s, so the job continues in the background. "
        "This page updates by itself when it finishes."
    ]
