"""Approvals in the middle of a tool run: the demo ticket's ``email_customer`` call (an
external effect) waits for a reviewer, who approves it (as written or edited) or rejects it
with a reason the model reads; an approval nobody gives times out. Against the fake provider
over real HTTP, the pump and tool tasks called in-process."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from demo.models import OutboxEmail
from jobs import execution, explain, services
from jobs.models import Artifact, FailureKind, Status, ToolCall
from review import services as review
from tests.factories import WorkspaceFactory, member_of
from tests.jobs.test_provider_lane import reload
from tests.jobs.test_tool_runs import work_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ticket(fake, workspace, submitter):
    job = services.submit_job(
        workspace=workspace,
        submitter=submitter,
        job_type="resolve_ticket",
        input={
            "order_reference": "A-1042",
            "customer_email": "dana@example.test",
            "message": "My shoes arrived wet.",
        },
    )
    execution.dispatch_job(job.pk)
    return work_until(job, lambda j: j.status == Status.NEEDS_REVIEW)


def email_call(job):
    return ToolCall.objects.get(job=job, name="email_customer")


def test_an_external_effect_call_waits_for_approval_and_nothing_is_sent(ticket):
    call = email_call(ticket)
    assert call.state == ToolCall.State.AWAITING_APPROVAL
    assert ticket.review_state == "pending"
    held = ticket.events.get(kind="approval_needed")
    assert held.message == (
        "Waiting for a reviewer or a workspace admin to approve: "
        "Email the customer at dana@example.test."
    )
    assert not OutboxEmail.objects.exists()
    # the lookup and the note ran without anyone's approval
    assert set(
        ToolCall.objects.filter(job=ticket, state=ToolCall.State.SUCCEEDED).values_list(
            "name", flat=True
        )
    ) == {"lookup_order", "add_internal_note"}


def test_an_approved_call_with_edited_arguments_runs_once_and_the_model_sees_its_output(
    ticket, reviewer
):
    call = email_call(ticket)
    edited = {**call.arguments, "body": "Hi Dana, a new pair ships today. Sorry!"}
    review.claim_draft(job=ticket, reviewer=reviewer)
    review.approve_tool_call(job=ticket, reviewer=reviewer, call_id=call.call_id, arguments=edited)
    assert reload(ticket).status == Status.RUNNING
    call.refresh_from_db()
    assert call.state == ToolCall.State.PENDING and call.arguments == edited
    assert call.original_arguments["body"] != edited["body"]  # the model's version is kept

    job = work_until(ticket, lambda j: Artifact.objects.filter(job=j, kind="text").exists())
    assert job.status == Status.NEEDS_REVIEW  # the final summary, reviewed as a draft
    email = OutboxEmail.objects.get()
    assert email.body == "Hi Dana, a new pair ships today. Sorry!"
    assert email.to == "dana@example.test"
    execution.run_tool_call(call.pk)  # a duplicate task
    assert OutboxEmail.objects.count() == 1
    answer = job.artifacts.get(kind=Artifact.Kind.TEXT).text
    assert f'"outbox_id": {email.pk}' in answer  # the edited call's output reached the model
    kinds = list(job.events.values_list("kind", flat=True))
    assert "tool_call_approved" in kinds


def test_a_rejected_calls_reason_reaches_the_model(ticket, reviewer):
    call = email_call(ticket)
    review.claim_draft(job=ticket, reviewer=reviewer)
    review.reject_tool_call(
        job=ticket, reviewer=reviewer, call_id=call.call_id, reason="Call her instead."
    )
    execution.continue_run(ticket.pk)  # the task the decision enqueues
    job = work_until(ticket, lambda j: Artifact.objects.filter(job=j, kind="text").exists())
    assert email_call(job).state == ToolCall.State.REJECTED
    assert not OutboxEmail.objects.exists()
    assert "Call her instead." in job.artifacts.get(kind=Artifact.Kind.TEXT).text


def test_an_approval_nobody_gives_times_out_and_is_not_a_rejection(ticket):
    later = timezone.now() + timedelta(hours=25)
    assert services.time_out_approvals(now=later) == 1
    job = reload(ticket)
    assert email_call(job).state == ToolCall.State.TIMED_OUT
    assert job.status == Status.FAILED and job.failure_kind == FailureKind.TIMEOUT
    assert job.failure_reason.startswith(
        "Nobody approved “Email the customer at dana@example.test” within 24 h"
    )
    assert job.review_state != "rejected"


def test_edited_arguments_that_break_the_schema_are_refused(ticket, reviewer, client):
    call = email_call(ticket)
    review.claim_draft(job=ticket, reviewer=reviewer)
    client.force_login(reviewer)
    url = f"/api/v1/review/{ticket.pk}/tool-calls/{call.call_id}/approve"
    response = client.post(
        url, {"arguments": {"customer_email": "x@example.test"}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "subject" in json.dumps(response.json()["errors"])
    assert email_call(ticket).state == ToolCall.State.AWAITING_APPROVAL


def test_the_api_approves_a_call(ticket, reviewer, client):
    call = email_call(ticket)
    client.force_login(reviewer)
    client.post(f"/api/v1/review/{ticket.pk}/claim")
    url = f"/api/v1/review/{ticket.pk}/tool-calls/{call.call_id}/approve"
    response = client.post(url, {}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert email_call(ticket).state == ToolCall.State.PENDING


def test_a_reviewer_of_another_workspace_gets_404_on_every_new_url(ticket, client):
    stranger_space = WorkspaceFactory()
    stranger = member_of(stranger_space, "reviewer")
    call = email_call(ticket)
    client.force_login(stranger)
    for name in ("approve-call", "reject-call"):
        url = reverse(f"review:{name}", args=[ticket.pk])
        assert client.post(url, {"call_id": call.call_id, "confirmed": "1"}).status_code == 404
    for action in ("approve", "reject"):
        url = f"/api/v1/review/{ticket.pk}/tool-calls/{call.call_id}/{action}"
        body = {"reason": "no"} if action == "reject" else {}
        assert client.post(url, body, content_type="application/json").status_code == 404
    assert email_call(ticket).state == ToolCall.State.AWAITING_APPROVAL


def test_null_argument_values_reach_the_tools_schema_check(ticket, reviewer, client):
    """Any JSON object is a well-formed body; whether it fits is the tool schema's to say."""
    call = email_call(ticket)
    client.force_login(reviewer)
    client.post(f"/api/v1/review/{ticket.pk}/claim")
    url = f"/api/v1/review/{ticket.pk}/tool-calls/{call.call_id}/approve"
    body = {"arguments": {**call.arguments, "subject": None}}
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert "None is not of type 'string'" in json.dumps(response.json()["errors"])


def test_the_submitters_page_says_the_run_is_paused_for_an_approval_not_that_a_result_waits(
    ticket, client, submitter
):
    client.force_login(submitter)
    html = client.get(reverse("job-detail", args=[ticket.pk])).content.decode()
    assert (
        "The run is paused: a reviewer or a workspace admin must approve "
        "“Email the customer at dana@example.test” before it goes on."
    ) in html
    assert "No result yet: the run is paused until a person approves a step" in html
    assert "The result is ready" not in html


def test_the_waiting_for_review_marker_shows_when_the_run_paused_for_an_approval(ticket):
    paused = ticket.events.get(kind="approval_needed")
    events = list(ticket.events.order_by("id"))
    reached = {m.key: m.at for m in explain.progress_markers(ticket, events)}
    assert reached["review"] == paused.created_at
    assert reached["released"] is None


def test_reviewers_hear_of_a_run_paused_for_an_approval_in_their_digest(reviewer, ticket):
    from notifications.models import Notification, Topic

    [digest] = Notification.objects.filter(user=reviewer, topic=Topic.NEEDS_REVIEW, read_at=None)
    assert digest.title == f"1 draft waiting for review in {ticket.workspace.name}"
    assert digest.event.kind == "approval_needed"
    assert not Notification.objects.filter(user=ticket.submitter, job=ticket).exists()
