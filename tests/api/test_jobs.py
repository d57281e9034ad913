"""Jobs over the API: submit, list, read, with each role's view of them."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from accounts.services import revoke_api_token
from jobs import services
from jobs.job_types import all_job_types, get_job_type
from jobs.models import Artifact, Attempt, FailureKind, Job, Priority, Status
from tests.api.conftest import bearer, post_json
from tests.factories import JobFactory, MembershipFactory, WorkspaceFactory, member_of

SUMMARY = {"job_type": "summarize_document", "input": {"title": "Q3", "document": "Numbers."}}


def client_for(role, *, member, reviewer, admin, outsider):
    """A client for one role; ``revoked`` holds a token that was revoked."""
    if role == "anonymous":
        return Client()
    if role == "revoked":
        client = bearer(member)
        revoke_api_token(token=client.token)
        return client
    return bearer(
        {"member": member, "reviewer": reviewer, "admin": admin, "outsider": outsider}[role]
    )


# --- job types ------------------------------------------------------------------------------


def test_job_types_list_each_type_with_an_input_json_schema(api):
    response = api.get("/api/v1/job-types")
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()}
    assert {"summarize_document", "draft_support_reply", "issue_refund"} <= set(types)
    schema = types["summarize_document"]["input_schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"title", "document"}
    assert types["issue_refund"]["authority_class"] == "external_effect"


# --- submit ---------------------------------------------------------------------------------


def _example_input(job_type):
    """A valid input for ``job_type``, from its fields alone."""
    values = {"email": "dana@example.test", "decimal": "12.50", "boolean": False}
    return {
        field.name: field.choices[0] if field.choices else values.get(field.kind, "Some words.")
        for field in job_type.fields
    }


@pytest.mark.parametrize("name", sorted(jt.name for jt in all_job_types()))
def test_every_job_type_can_be_submitted_through_the_api(api, name):
    """Each job type's published schema and its checks agree (a tool run's declaration among
    them), so a valid input is a 201, never a 500."""
    job_type = get_job_type(name)
    response = post_json(api, "/api/v1/jobs", {"job_type": name, "input": _example_input(job_type)})
    assert response.status_code == 201, response.content
    assert response.json()["job_type"] == name


def test_submit_creates_a_queued_job_with_its_first_event(api, member, workspace):
    response = post_json(api, "/api/v1/jobs", {**SUMMARY, "priority": "high"})
    assert response.status_code == 201
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert response["Location"] == f"/api/v1/jobs/{job.pk}"
    assert "Idempotent-Replayed" not in response
    assert (job.workspace, job.submitter, job.priority) == (workspace, member, Priority.HIGH)
    assert body["status"] == "queued" and body["priority"] == "high"
    assert body["input"] == {"title": "Q3", "document": "Numbers.", "sensitive": False}
    assert list(job.events.values_list("kind", "actor")) == [("submitted", member.pk)]


def test_submit_defaults_to_normal_priority(api):
    body = post_json(api, "/api/v1/jobs", SUMMARY).json()
    assert body["priority"] == "normal"
    assert Job.objects.get(pk=body["id"]).priority == Priority.NORMAL


@pytest.mark.parametrize("role", ["member", "reviewer", "admin"])
def test_every_role_can_submit_to_its_workspace(people, role, workspace):
    response = post_json(bearer(people[role]), "/api/v1/jobs", SUMMARY)
    assert response.status_code == 201
    assert response.json()["workspace"] == str(workspace.pk)


def test_submit_into_another_workspace_is_a_field_error(outsider, workspace):
    response = post_json(
        bearer(outsider), "/api/v1/jobs", {**SUMMARY, "workspace": str(workspace.pk)}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "workspace": ["You are not a member of a workspace with this id."]
    }
    assert not Job.objects.filter(workspace=workspace).exists()


def test_submit_needs_the_workspace_when_the_user_has_several(member, workspace):
    other = WorkspaceFactory()
    MembershipFactory(user=member, workspace=other)
    client = bearer(member)
    response = post_json(client, "/api/v1/jobs", SUMMARY)
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "workspace": ["You belong to several workspaces; say which one."]
    }
    chosen = post_json(client, "/api/v1/jobs", {**SUMMARY, "workspace": str(other.pk)})
    assert chosen.status_code == 201 and chosen.json()["workspace"] == str(other.pk)


def test_invalid_input_is_400_with_errors_per_input_field(api):
    response = post_json(
        api,
        "/api/v1/jobs",
        {"job_type": "summarize_document", "input": {"document": "x" * 50_001, "colour": "red"}},
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:steward:problem:validation-error"
    assert body["errors"] == {
        "input.title": ["This field is required."],
        "input.document": ["Keep this under 50000 characters (it has 50001)."],
        "input": ["Unknown field(s): colour."],
    }
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SUMMARY, "job_type": "launch_rocket"}, "job_type"),
        ({**SUMMARY, "priority": "urgent"}, "priority"),
        ({**SUMMARY, "input": ["not", "an", "object"]}, "input"),
        ({"input": SUMMARY["input"]}, "job_type"),
        ({**SUMMARY, "workspace": "not-a-uuid"}, "workspace"),
    ],
)
def test_malformed_submission_is_400_naming_the_field(api, body, field):
    response = post_json(api, "/api/v1/jobs", body)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_body_that_is_not_json_is_400(api):
    response = api.post("/api/v1/jobs", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The request body is not valid JSON")


def test_body_in_another_media_type_is_415(api):
    response = api.post("/api/v1/jobs", {"job_type": "summarize_document"})
    assert response.status_code == 415
    assert response["Content-Type"] == "application/problem+json"


# --- list -----------------------------------------------------------------------------------


@pytest.fixture
def jobs_by_person(workspace, member, reviewer, outsider):
    mine = JobFactory(workspace=workspace, submitter=member)
    reviewers = JobFactory(workspace=workspace, submitter=reviewer)
    elsewhere = JobFactory(workspace=outsider.memberships.get().workspace, submitter=outsider)
    return {"member": mine, "reviewer": reviewers, "outsider": elsewhere}


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        ("member", {"member"}),
        ("reviewer", {"reviewer"}),
        ("admin", {"member", "reviewer"}),
        ("outsider", {"outsider"}),
    ],
)
def test_list_shows_own_jobs_and_admins_see_their_workspace(people, jobs_by_person, role, sees):
    response = bearer(people[role]).get("/api/v1/jobs")
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {str(jobs_by_person[name].pk) for name in sees}


@pytest.mark.parametrize("role", ["anonymous", "revoked"])
def test_list_refuses_anonymous_and_revoked(people, role):
    client = client_for(role, **people)
    assert client.get("/api/v1/jobs").status_code == 401


def test_list_filters_by_status_type_archived_and_creation_time(api, member, workspace):
    old = JobFactory(workspace=workspace, submitter=member, status=Status.FAILED)
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    failed = JobFactory(workspace=workspace, submitter=member, status=Status.FAILED)
    reply = JobFactory(workspace=workspace, submitter=member, job_type="draft_support_reply")
    archived = JobFactory(workspace=workspace, submitter=member, status=Status.COMPLETED)
    Job.objects.filter(pk=archived.pk).update(is_archived=True)

    def ids(query):
        response = api.get("/api/v1/jobs", query)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids({}) == {str(old.pk), str(failed.pk), str(reply.pk)}
    assert ids({"status": "failed"}) == {str(old.pk), str(failed.pk)}
    assert ids({"job_type": "draft_support_reply"}) == {str(reply.pk)}
    assert ids({"archived": "true"}) == {str(archived.pk)}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids({"status": "failed", "created_after": since}) == {str(failed.pk)}


@pytest.mark.parametrize(
    "query", [{"status": "in_progress"}, {"created_after": "yesterday"}, {"archived": "maybe"}]
)
def test_list_rejects_bad_filters_with_400(api, query):
    response = api.get("/api/v1/jobs", query)
    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(query)


def test_list_pages_with_a_cursor_without_gaps_or_repeats(api, member, workspace):
    jobs = JobFactory.create_batch(7, workspace=workspace, submitter=member)
    seen, url, pages = [], "/api/v1/jobs?page_size=3", 0
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert sorted(seen) == sorted(str(j.pk) for j in jobs) and len(seen) == len(set(seen))


def test_list_reads_a_fixed_number_of_queries(api, member, workspace, django_assert_num_queries):
    JobFactory.create_batch(5, workspace=workspace, submitter=member)
    # token lookup, last-used update, the user's memberships (their workspace ids go into the
    # jobs query as values, so the my-jobs index serves the page), the page of jobs with
    # workspace and submitter joined
    with django_assert_num_queries(4):
        assert len(api.get("/api/v1/jobs").json()["results"]) == 5


# --- detail ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("member", 200),
        ("reviewer", 404),
        ("admin", 200),
        ("outsider", 404),
        ("anonymous", 401),
        ("revoked", 401),
    ],
)
def test_detail_by_role(people, workspace, role, expected):
    job = JobFactory(workspace=workspace, submitter=people["member"])
    response = client_for(role, **people).get(f"/api/v1/jobs/{job.pk}")
    assert response.status_code == expected
    if expected == 404:
        assert response.json()["detail"] == "There is no job with this id that you can see."


def test_detail_of_an_unknown_job_is_404(api):
    response = api.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_detail_explains_a_failure(api, member, workspace):
    job = JobFactory(workspace=workspace, submitter=member, status=Status.RUNNING)
    services.fail_job(
        job=job,
        actor="system:poller",
        kind=FailureKind.PROVIDER,
        reason="The model stopped early.",
        retryable=True,
        has_partial_output=True,
        needs_human=True,
    )
    body = api.get(f"/api/v1/jobs/{job.pk}").json()
    assert body["status"] == "failed"
    assert body["failure"] == {
        "kind": "provider",
        "reason": "The model stopped early.",
        "retryable": True,
        "has_partial_output": True,
        "needs_human": True,
    }
    assert body["timings"]["finished_at"] is not None


def test_detail_shows_attempts_with_usage_and_cost_and_the_released_output(api, member, workspace):
    job = JobFactory(
        workspace=workspace,
        submitter=member,
        status=Status.COMPLETED,
        input_tokens=150,
        output_tokens=60,
        cost=Decimal("0.00012"),
        attempt_count=2,
    )
    Attempt.objects.create(job=job, number=1, state="failed", error_kind="provider", cost=0)
    Attempt.objects.create(
        job=job, number=2, state="succeeded", input_tokens=150, output_tokens=60, cost="0.00012"
    )
    services.add_artifact(job=job, kind=Artifact.Kind.TEXT, text="First draft")
    services.add_artifact(job=job, kind=Artifact.Kind.TEXT, text="Edited answer")
    services.add_artifact(job=job, kind=Artifact.Kind.TEXT, text="Arrived late", stale=True)
    body = api.get(f"/api/v1/jobs/{job.pk}").json()
    assert body["output"]["text"] == "Edited answer" and body["output"]["version"] == 2
    assert [a["number"] for a in body["attempts"]] == [1, 2]
    assert body["attempts"][0]["error_kind"] == "provider"
    assert body["attempts"][1]["usage"] == {
        "input_tokens": 150,
        "cached_tokens": 0,
        "output_tokens": 60,
        "reasoning_tokens": 0,
        "cost": "0.00012000",
    }
    assert body["usage"]["cost"] == "0.00012000" and body["usage"]["input_tokens"] == 150
    assert body["failure"] is None


def test_detail_does_not_release_a_draft_waiting_for_review(api, member, workspace):
    job = JobFactory(workspace=workspace, submitter=member, status=Status.NEEDS_REVIEW)
    services.add_artifact(job=job, kind=Artifact.Kind.TEXT, text="Unreviewed draft")
    body = api.get(f"/api/v1/jobs/{job.pk}").json()
    assert body["status"] == "needs_review" and body["output"] is None


def test_admin_sees_a_colleagues_job_detail(workspace, member):
    job = JobFactory(workspace=workspace, submitter=member)
    admin = member_of(workspace, Role.ADMIN)
    assert bearer(admin).get(f"/api/v1/jobs/{job.pk}").json()["submitter"] == member.username
