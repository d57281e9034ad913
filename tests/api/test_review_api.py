"""Review over the API: the queue and each review action, for each role."""

import pytest
from django.test import Client

from accounts.models import Role
from accounts.services import revoke_api_token
from jobs import services as job_services
from jobs.models import Job, ReviewState, Status
from tests.api.conftest import bearer, post_json
from tests.factories import JobFactory, WorkspaceFactory, member_of

PROBLEM = "application/problem+json"


def client_for(role, people):
    if role == "anonymous":
        return Client()
    if role == "revoked":
        client = bearer(people["reviewer"])
        revoke_api_token(token=client.token)
        return client
    return bearer(people[role])


def url(job, action):
    return f"/api/v1/review/{job.pk}/{action}"


# --- queue ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected", "sees_draft"),
    [
        ("reviewer", 200, True),
        ("admin", 200, True),
        ("outsider", 200, False),
        ("member", 403, False),
        ("anonymous", 401, False),
        ("revoked", 401, False),
    ],
)
def test_queue_by_role(people, draft, role, expected, sees_draft):
    response = client_for(role, people).get("/api/v1/review/queue")
    assert response.status_code == expected
    if expected == 200:
        ids = [item["id"] for item in response.json()["results"]]
        assert (str(draft.pk) in ids) is sees_draft
    else:
        assert response["Content-Type"] == PROBLEM


def test_queue_shows_who_holds_a_claim_and_filters_by_claim_state(people, draft, workspace):
    reviewer = bearer(people["reviewer"])
    other = JobFactory(
        workspace=workspace,
        submitter=people["member"],
        job_type="draft_support_reply",
        authority_class="draft",
        status=Status.NEEDS_REVIEW,
        review_state=ReviewState.PENDING,
    )
    assert post_json(reviewer, url(draft, "claim")).status_code == 200
    items = {i["id"]: i for i in reviewer.get("/api/v1/review/queue").json()["results"]}
    assert items[str(draft.pk)]["claim"]["reviewer"] == people["reviewer"].username
    assert items[str(other.pk)]["claim"] is None
    mine = reviewer.get("/api/v1/review/queue", {"claim_state": "mine"}).json()["results"]
    assert [i["id"] for i in mine] == [str(draft.pk)]
    admin_view = bearer(people["admin"]).get("/api/v1/review/queue", {"claim_state": "others"})
    assert [i["id"] for i in admin_view.json()["results"]] == [str(draft.pk)]


def test_queue_rejects_unknown_filters(people):
    response = bearer(people["reviewer"]).get("/api/v1/review/queue", {"claim_state": "all"})
    assert response.status_code == 400 and "claim_state" in response.json()["errors"]


# --- actions by role ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("reviewer", 200),
        ("admin", 200),
        ("outsider", 404),
        ("member", 403),
        ("anonymous", 401),
        ("revoked", 401),
    ],
)
def test_claim_by_role(people, draft, role, expected):
    response = post_json(client_for(role, people), url(draft, "claim"))
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["claim"]["reviewer"] == people[role].username
        assert response.json()["draft"]["text"] == "Hi Ada, it ships today."
    else:
        assert response["Content-Type"] == PROBLEM


def test_nobody_reviews_their_own_job(workspace, draft):
    submitter_who_reviews = member_of(workspace, Role.REVIEWER)
    own = JobFactory(
        workspace=workspace,
        submitter=submitter_who_reviews,
        job_type="draft_support_reply",
        authority_class="draft",
        status=Status.NEEDS_REVIEW,
        review_state=ReviewState.PENDING,
    )
    response = post_json(bearer(submitter_who_reviews), url(own, "claim"))
    assert response.status_code == 403
    assert "four-eyes" in response.json()["detail"]


def test_a_claim_held_by_someone_else_is_409_naming_nothing_secret(people, draft):
    assert post_json(bearer(people["reviewer"]), url(draft, "claim")).status_code == 200
    response = post_json(bearer(people["admin"]), url(draft, "claim"))
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert response.json()["detail"]


def test_release_claim_gives_the_draft_back(people, draft):
    reviewer = bearer(people["reviewer"])
    post_json(reviewer, url(draft, "claim"))
    response = post_json(reviewer, url(draft, "release-claim"))
    assert response.status_code == 200 and response.json()["claim"] is None
    assert post_json(bearer(people["admin"]), url(draft, "claim")).status_code == 200


def test_release_without_a_claim_is_409(people, draft):
    assert post_json(bearer(people["reviewer"]), url(draft, "release-claim")).status_code == 409


# --- decisions ------------------------------------------------------------------------------


def test_edit_adds_a_new_version_and_keeps_the_old(claimed, draft):
    response = post_json(claimed, url(draft, "edit"), {"text": "Hi Ada, it ships tomorrow."})
    assert response.status_code == 200
    assert response.json()["draft"] == {
        **response.json()["draft"],
        "text": "Hi Ada, it ships tomorrow.",
        "version": 2,
    }
    texts = list(
        draft.artifacts.filter(kind="text").order_by("version").values_list("text", flat=True)
    )
    assert texts == ["Hi Ada, it ships today.", "Hi Ada, it ships tomorrow."]


def test_approve_completes_the_draft_and_releases_its_output(claimed, draft, member):
    response = post_json(claimed, url(draft, "approve"))
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["review_state"] == "approved"
    submitter_view = bearer(member).get(f"/api/v1/jobs/{draft.pk}").json()
    assert submitter_view["output"]["text"] == "Hi Ada, it ships today."


def test_approve_with_text_saves_it_first(claimed, draft, member):
    response = post_json(claimed, url(draft, "approve"), {"text": "Hi Ada! Ships today."})
    assert response.status_code == 200
    assert bearer(member).get(f"/api/v1/jobs/{draft.pk}").json()["output"]["text"] == (
        "Hi Ada! Ships today."
    )


def test_approve_without_a_claim_is_409(people, draft):
    response = post_json(bearer(people["reviewer"]), url(draft, "approve"))
    assert response.status_code == 409
    assert "Claim this draft" in response.json()["detail"]


def test_reject_needs_a_reason_and_fails_the_job_with_it(claimed, draft, member):
    missing = post_json(claimed, url(draft, "reject"), {})
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    response = post_json(claimed, url(draft, "reject"), {"reason": "Wrong order number."})
    assert response.status_code == 200 and response.json()["status"] == "failed"
    failure = bearer(member).get(f"/api/v1/jobs/{draft.pk}").json()["failure"]
    assert failure["kind"] == "review" and "Wrong order number." in failure["reason"]


def test_send_back_queues_another_attempt_with_the_notes(claimed, draft):
    missing = post_json(claimed, url(draft, "send-back"), {"notes": ""})
    assert missing.status_code == 400 and "notes" in missing.json()["errors"]
    response = post_json(claimed, url(draft, "send-back"), {"notes": "Mention the tracking link."})
    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert job_services.reviewer_notes_for(draft) == ["Mention the tracking link."]


def test_escalate_hands_the_draft_to_admins(claimed, draft, people):
    response = post_json(claimed, url(draft, "escalate"), {"note": "Legal should look."})
    assert response.status_code == 200 and response.json()["review_state"] == "escalated"
    again = post_json(claimed, url(draft, "claim"))
    assert again.status_code == 403 and "only an admin" in again.json()["detail"]
    admin = bearer(people["admin"])
    assert post_json(admin, url(draft, "claim")).status_code == 200


def test_a_decided_draft_cannot_be_decided_again(claimed, draft):
    assert post_json(claimed, url(draft, "approve")).status_code == 200
    response = post_json(claimed, url(draft, "reject"), {"reason": "Too late."})
    assert response.status_code == 409
    assert "no longer waiting for review" in response.json()["detail"]


def test_a_draft_of_another_workspace_is_404(people, draft):
    stranger_reviewer = member_of(WorkspaceFactory(), Role.REVIEWER)
    for action in ("claim", "approve"):
        assert post_json(bearer(stranger_reviewer), url(draft, action)).status_code == 404


def test_review_actions_leave_the_same_events_as_the_console(people, draft, workspace):
    """Claim then approve via the API leaves the same audit trail as the services do."""
    post_json(bearer(people["reviewer"]), url(draft, "claim"))
    post_json(bearer(people["reviewer"]), url(draft, "approve"))
    kinds = list(Job.objects.get(pk=draft.pk).events.order_by("id").values_list("kind", "actor"))
    assert kinds == [("claimed", people["reviewer"].pk), ("approved", people["reviewer"].pk)]


def test_schema_documents_every_review_endpoint(db):
    schema = Client().get("/api/v1/schema/", {"format": "json"}).json()
    assert "get" in schema["paths"]["/api/v1/review/queue"]
    for action in ("claim", "release-claim", "edit", "approve", "reject", "send-back", "escalate"):
        operation = schema["paths"][f"/api/v1/review/{{job_id}}/{action}"]["post"]
        assert {"200", "400", "401", "403", "404", "409", "429"} <= set(operation["responses"])
