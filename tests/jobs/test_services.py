"""The job services: legal moves succeed with exactly one audit event, illegal ones raise."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.brokers import get_broker

from accounts.models import Role
from jobs import execution, services
from jobs.errors import (
    InvalidJobInput,
    LaneNotAllowed,
    NotAMember,
    TransitionNotAllowed,
)
from jobs.models import Attempt, FailureKind, Job, JobEvent, PumpSlot, ReviewState, Status
from jobs.results import AttemptOutcome, Usage
from jobs.services.finishing import ATTEMPT_RESULT_FIELDS
from tests.factories import JobFactory, WorkspaceFactory, member_of

S = Status
VALID_INPUT = {"title": "Board minutes", "document": "We met and agreed on things."}


def fail(job, actor):
    return services.fail_job(job=job, actor=actor, kind=FailureKind.TOOL, reason="It broke.")


SERVICES = {
    "cancel_job": (
        lambda job, actor: services.cancel_job(job=job, actor=actor),
        {S.QUEUED, S.RUNNING, S.NEEDS_REVIEW},
        S.CANCELED,
    ),
    "expire_job": (
        lambda job, actor: services.expire_job(job=job, actor=actor),
        {S.QUEUED, S.RUNNING},
        S.EXPIRED,
    ),
    "retry_job": (
        lambda job, actor: services.retry_job(job=job, actor=actor),
        {S.FAILED, S.CANCELED, S.EXPIRED},
        S.QUEUED,
    ),
    "mark_running": (
        lambda job, actor: services.mark_running(job=job, actor=actor),
        {S.QUEUED},
        S.RUNNING,
    ),
    "fail_job": (fail, {S.QUEUED, S.RUNNING, S.NEEDS_REVIEW}, S.FAILED),
    "archive_job": (
        lambda job, actor: services.archive_job(job=job, actor=actor),
        {S.COMPLETED, S.FAILED, S.CANCELED, S.EXPIRED},
        None,
    ),
}
CASES = [(name, status) for name in SERVICES for status in Status]


@pytest.mark.django_db
@pytest.mark.parametrize(("service", "status"), CASES)
def test_service_moves_or_refuses_with_one_event(service, status):
    call, allowed, target = SERVICES[service]
    job = JobFactory(status=status, attempt_count=1, failure_retryable=True)
    actor = job.submitter
    before = JobEvent.objects.filter(job=job).count()
    if status in allowed:
        result = call(job, actor)
        assert result.status == (target or status)
        events = list(JobEvent.objects.filter(job=job).order_by("id"))
        assert len(events) == before + 1
        event = events[-1]
        assert event.actor == actor
        assert event.actor_label == actor.username
        assert event.from_status == status
        assert event.to_status == (target or status)
    else:
        with pytest.raises(TransitionNotAllowed) as refused:
            call(job, actor)
        assert "job" in refused.value.message
        job.refresh_from_db()
        assert job.status == status
        assert JobEvent.objects.filter(job=job).count() == before


@pytest.mark.django_db
def test_retry_refused_when_attempts_are_used_up():
    job = JobFactory(status=S.FAILED, attempt_count=3, attempt_limit=3)
    with pytest.raises(TransitionNotAllowed, match="used all 3 of its attempts"):
        services.retry_job(job=job, actor=job.submitter)


@pytest.mark.django_db
def test_archive_twice_is_refused_with_a_reason():
    job = JobFactory(status=S.COMPLETED)
    services.archive_job(job=job, actor=job.submitter)
    with pytest.raises(TransitionNotAllowed, match="already archived"):
        services.archive_job(job=job, actor=job.submitter)


@pytest.mark.django_db
def test_fail_job_records_kind_flags_and_readable_reason():
    job = JobFactory(status=S.RUNNING)
    job = services.fail_job(
        job=job,
        actor="system:poller",
        kind=FailureKind.POLICY,
        reason="The content filter blocked the answer.",
        retryable=False,
        has_partial_output=True,
        needs_human=True,
    )
    assert (job.failure_kind, job.failure_retryable) == ("policy", False)
    assert job.has_partial_output and job.needs_human
    assert job.failure_reason == "The content filter blocked the answer."
    event = job.events.last()
    assert event.actor is None and event.actor_label == "system:poller"


@pytest.mark.django_db(transaction=True)
def test_submit_writes_job_and_first_event(workspace, submitter):
    job = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input=VALID_INPUT,
    )
    job.refresh_from_db()
    assert job.status == S.QUEUED
    assert job.input_summary == "Board minutes"
    assert job.authority_class == "read_only" and job.lane == "background"
    assert job.expires_at > timezone.now()
    [event] = job.events.all()
    assert (event.kind, event.actor, event.to_status) == ("submitted", submitter, "queued")


def submit_and_count_queued_tasks(workspace, submitter):
    broker = get_broker()
    before = broker.queue_size()
    job = services.submit_job(
        workspace=workspace, submitter=submitter, job_type="summarize_document", input=VALID_INPUT
    )
    return job, broker.queue_size() - before


@pytest.mark.django_db(transaction=True)
def test_a_job_submitted_while_the_pump_beats_is_left_to_it_without_a_dispatch_task(
    workspace, submitter, settings
):
    settings.PUMP_SLOTS = 1
    PumpSlot.objects.create(slot=0, owner="pump", heartbeat_at=timezone.now())
    job, queued = submit_and_count_queued_tasks(workspace, submitter)
    assert queued == 0
    assert [j.pk for j in execution.claim_due("next-pump-turn", job_ids=[job.pk])] == [job.pk]


@pytest.mark.django_db(transaction=True)
def test_a_job_submitted_while_a_pump_slot_is_quiet_gets_a_dispatch_task(
    workspace, submitter, settings
):
    settings.PUMP_SLOTS = 2
    PumpSlot.objects.create(slot=0, owner="pump", heartbeat_at=timezone.now())
    PumpSlot.objects.create(
        slot=1, owner="gone", heartbeat_at=timezone.now() - timedelta(minutes=1)
    )
    _, queued = submit_and_count_queued_tasks(workspace, submitter)
    assert queued == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_submitted_just_after_the_pump_gave_its_slot_up_gets_a_dispatch_task(
    workspace, submitter, settings
):
    """A pump whose cluster is stopping frees its slot at once; its last beat is fresh, but no
    pump will take the new job up until one starts again, so submit queues its dispatch."""
    settings.PUMP_SLOTS = 1
    PumpSlot.objects.create(slot=0, owner="", heartbeat_at=timezone.now())
    _, queued = submit_and_count_queued_tasks(workspace, submitter)
    assert queued == 1


@pytest.mark.django_db
def test_submit_rejects_bad_input_with_field_errors(workspace, submitter):
    with pytest.raises(InvalidJobInput) as error:
        services.submit_job(
            workspace=workspace,
            submitter=submitter,
            job_type="issue_refund",
            input={
                "order_reference": "A-1",
                "customer_email": "nope",
                "amount": "-3",
                "reason": "",
                "extra": "x",
            },
        )
    errors = error.value.errors
    assert errors["customer_email"] == ["Enter an email address."]
    assert errors["amount"] == ["Must be at least 0.01."]
    assert errors["reason"] == ["This field is required."]
    assert "extra" in errors["input"][0]
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_submit_refused_for_non_members(workspace):
    outsider = member_of(WorkspaceFactory())
    with pytest.raises(NotAMember):
        services.submit_job(
            workspace=workspace,
            submitter=outsider,
            job_type="summarize_document",
            input=VALID_INPUT,
        )


@pytest.mark.django_db
def test_zero_data_retention_workspace_cannot_use_background_lane(submitter, workspace):
    workspace.zero_data_retention = True
    workspace.save()
    with pytest.raises(LaneNotAllowed, match="zero data retention"):
        services.submit_job(
            workspace=workspace,
            submitter=submitter,
            job_type="summarize_document",
            input=VALID_INPUT,
        )
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_idempotency_key_replays_same_request(workspace, submitter):
    first = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input=VALID_INPUT,
        idempotency_key="k-1",
    )
    again = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input=VALID_INPUT,
        idempotency_key="k-1",
    )
    assert again.pk == first.pk and again.replayed and not first.replayed
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_idempotency_key_with_different_body_is_refused(workspace, submitter):
    services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input=VALID_INPUT,
        idempotency_key="k-1",
    )
    with pytest.raises(services.IdempotencyKeyReused):
        services.submit_job(
            workspace=workspace,
            submitter=submitter,
            job_type="summarize_document",
            input={**VALID_INPUT, "title": "Other"},
            idempotency_key="k-1",
        )


@pytest.mark.django_db
def test_same_idempotency_key_in_two_workspaces_makes_two_jobs(workspace, submitter):
    other = WorkspaceFactory()
    other_user = member_of(other)
    a = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="summarize_document",
        input=VALID_INPUT,
        idempotency_key="shared",
    )
    b = services.submit_job(
        workspace=other,
        submitter=other_user,
        job_type="summarize_document",
        input=VALID_INPUT,
        idempotency_key="shared",
    )
    assert a.pk != b.pk
    assert Job.objects.filter(idempotency_key="shared").count() == 2


def _outcome(status="completed", **fields):
    usage = Usage(
        input_tokens=100,
        cached_tokens=20,
        output_tokens=50,
        reasoning_tokens=10,
        cost=Decimal("0.00012"),
        price_version="test",
    )
    return AttemptOutcome(
        status=status,
        text=fields.pop("text", "The answer."),
        usage=usage,
        provider_status=status,
        **fields,
    )


def _in_flight(job):
    attempt = services.begin_attempt(job=job, instructions="Do it.")
    return services.record_dispatch(
        attempt=attempt, response_id=f"resp_{job.pk.hex}_{attempt.number}", provider_status="queued"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authority", "sensitive", "status", "review_state"),
    [
        ("read_only", False, S.COMPLETED, ReviewState.NOT_REQUIRED),
        ("read_only", True, S.NEEDS_REVIEW, ReviewState.PENDING),
        ("draft", False, S.NEEDS_REVIEW, ReviewState.PENDING),
        ("external_effect", False, S.NEEDS_REVIEW, ReviewState.PENDING),
    ],
)
def test_finished_attempt_routes_by_authority_class(authority, sensitive, status, review_state):
    job = JobFactory(authority_class=authority, is_sensitive=sensitive)
    attempt = _in_flight(job)
    job = services.finish_attempt(job=job, attempt=attempt, outcome=_outcome())
    assert (job.status, job.review_state) == (status, review_state)
    assert job.artifacts.get().text == "The answer."
    assert (job.input_tokens, job.output_tokens, job.cost) == (100, 50, Decimal("0.00012"))
    event = job.events.last()
    assert (event.from_status, event.to_status) == ("queued", status)


@pytest.mark.django_db
def test_result_after_cancel_is_kept_stale_and_not_released():
    job = JobFactory()
    attempt = _in_flight(job)
    services.cancel_job(job=job, actor=job.submitter)
    job = services.finish_attempt(job=job, attempt=attempt, outcome=_outcome())
    assert job.status == S.CANCELED
    artifact = job.artifacts.get()
    assert artifact.is_stale and artifact.text == "The answer."
    assert job.events.last().kind == "stale_result"
    assert Attempt.objects.get(pk=attempt.pk).is_stale


@pytest.mark.django_db
def test_finish_attempt_twice_applies_once():
    job = JobFactory()
    attempt = _in_flight(job)
    services.finish_attempt(job=job, attempt=attempt, outcome=_outcome())
    job = services.finish_attempt(job=job, attempt=attempt, outcome=_outcome())
    assert job.cost == Decimal("0.00012")
    assert job.artifacts.count() == 1
    assert job.events.filter(kind="completed").count() == 1


@pytest.mark.django_db
def test_retryable_failure_schedules_a_new_attempt_while_budget_remains():
    job = JobFactory(attempt_limit=2)
    attempt = _in_flight(job)
    job = services.finish_attempt(
        job=job,
        attempt=attempt,
        outcome=_outcome(
            "failed",
            text="",
            failure_kind="provider",
            retryable=True,
            error_code="server_error",
            error_message="The provider had an error.",
            retry_after=7,
        ),
    )
    assert job.status == S.QUEUED
    assert job.events.last().kind == "retry_scheduled"
    assert (job.next_poll_at - timezone.now()).total_seconds() > 6
    second = _in_flight(job)
    job = services.finish_attempt(
        job=job,
        attempt=second,
        outcome=_outcome(
            "failed",
            text="",
            failure_kind="provider",
            retryable=True,
            error_code="server_error",
            error_message="The provider had an error.",
        ),
    )
    assert job.status == S.FAILED
    assert job.failure_retryable and job.failure_kind == "provider"
    assert job.cost == Decimal("0.00024")  # both attempts are paid for


@pytest.mark.django_db
def test_incomplete_result_keeps_partial_output_and_asks_for_a_person():
    job = JobFactory()
    attempt = _in_flight(job)
    job = services.finish_attempt(
        job=job,
        attempt=attempt,
        outcome=_outcome("incomplete", text="Half an ans", error_code="max_output_tokens"),
    )
    assert job.status == S.FAILED and job.has_partial_output and job.needs_human
    assert job.artifacts.get().kind == "partial"


@pytest.mark.django_db
def test_reviewer_role_does_not_grant_submission_elsewhere(workspace):
    reviewer = member_of(workspace, role=Role.REVIEWER)
    other = WorkspaceFactory()
    with pytest.raises(NotAMember):
        services.submit_job(
            workspace=other, submitter=reviewer, job_type="summarize_document", input=VALID_INPUT
        )


@pytest.mark.django_db
@pytest.mark.parametrize(("authority", "sensitive"), [("read_only", False), ("draft", False)])
@pytest.mark.parametrize("seen_running", [True, False])
def test_one_job_and_batch_paths_finish_an_attempt_alike(authority, sensitive, seen_running):
    """The pump's batch path and ``finish_attempt`` leave the same job, attempt, artifact and
    events for the same completed result."""
    outcome = _outcome(model="gpt-test", service_tier="default", provider_seconds=4.5)
    jobs = [JobFactory(authority_class=authority, is_sensitive=sensitive) for _ in range(2)]
    attempts = [_in_flight(job) for job in jobs]
    if seen_running:
        for job in jobs:
            services.mark_running(job=job)
    one, batch = [Job.objects.get(pk=job.pk) for job in jobs]
    services.finish_attempt(job=one, attempt=attempts[0], outcome=outcome)
    assert services.finish_completed_batch([(batch, attempts[1], outcome)]) == []

    def state(job, attempt):
        job.refresh_from_db()
        attempt.refresh_from_db()
        skip = {"finished_at"}
        return (
            {name: getattr(attempt, name) for name in ATTEMPT_RESULT_FIELDS if name not in skip},
            (attempt.state, attempt.is_stale),
            (job.status, job.review_state, job.input_tokens, job.cost, job.started_at is None),
            (job.completed_at is None, job.finished_at is None, job.next_poll_at, job.lease_owner),
            [(a.kind, a.version, a.text, a.note) for a in job.artifacts.order_by("id")],
            [(e.kind, e.from_status, e.to_status, e.message) for e in job.events.order_by("id")],
        )

    assert state(one, attempts[0]) == state(batch, attempts[1])
