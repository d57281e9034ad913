"""The review console over HTTP: scoping, the queue's query budget, and each action's page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from jobs.models import Artifact, Status
from review import services
from review.models import Decision, ReviewPolicy
from review.views import ACTIONS
from tests.factories import WorkspaceFactory, member_of
from tests.review.drafts import make_draft

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_reviewer(client, reviewer):
    client.force_login(reviewer)
    return client


def job_urls(job):
    urls = [("get", reverse("review:detail", args=[job.pk]))]
    urls += [("post", reverse(f"review:{name}", args=[job.pk])) for name in ACTIONS]
    return urls


def test_reviewer_of_another_workspace_gets_404_on_every_console_url(client, draft):
    outsider = member_of(WorkspaceFactory(), "reviewer")
    client.force_login(outsider)
    for method, url in job_urls(draft):
        for call in (client.get, client.post):  # the wrong method must not reveal the job either
            response = call(url, {"text": "x", "reason": "x", "notes": "x", "note": "x"})
            assert response.status_code == 404, (method, url, call.__name__)
    queue = client.get(reverse("review:queue"))
    assert queue.status_code == 200 and draft.input_summary not in queue.content.decode()
    client.post(reverse("review:bulk-approve"), {"job": [str(draft.pk)]})
    draft.refresh_from_db()
    assert draft.status == Status.NEEDS_REVIEW
    assert not Decision.objects.exists()


def test_plain_member_gets_404_on_the_console(client, draft, workspace):
    client.force_login(member_of(workspace))
    assert client.get(reverse("review:queue")).status_code == 404
    for _, url in job_urls(draft):
        assert client.post(url).status_code == 404


def test_anonymous_user_is_sent_to_log_in(client, draft):
    response = client.get(reverse("review:detail", args=[draft.pk]))
    assert response.status_code == 302 and "/login/" in response.url


def _fill_queue(workspace, submitter, count):
    for _ in range(count):
        make_draft(workspace=workspace, submitter=submitter)


def test_queue_query_count_is_constant_as_the_queue_grows(
    as_reviewer, workspace, submitter, reviewer, other_reviewer, django_assert_num_queries
):
    _fill_queue(workspace, submitter, 3)
    services.claim_draft(
        job=workspace.jobs.filter(status="needs_review").first(), reviewer=other_reviewer
    )
    url = reverse("review:queue") + "?order=priority"
    as_reviewer.get(url)  # warm the session
    with CaptureQueriesContext(connection) as small:
        assert as_reviewer.get(url).status_code == 200
    _fill_queue(workspace, submitter, 20)
    with django_assert_num_queries(len(small.captured_queries)):
        response = as_reviewer.get(url)
    assert response.content.decode().count("data-queue-row") == 23


def test_queue_shows_claim_holder_and_flags_past_sla(as_reviewer, draft, other_reviewer):
    from datetime import timedelta

    ReviewPolicy.objects.create(job_type=draft.job_type, review_sla=timedelta(seconds=0))
    services.claim_draft(job=draft, reviewer=other_reviewer)
    html = as_reviewer.get(reverse("review:queue")).content.decode()
    assert "Otto" in html
    assert "past SLA" in html


def test_queue_filters_by_type_class_and_claim(as_reviewer, workspace, submitter, reviewer):
    reply = make_draft(workspace=workspace, submitter=submitter)
    refund = make_draft(workspace=workspace, submitter=submitter, job_type="issue_refund")
    services.claim_draft(job=refund, reviewer=reviewer)
    queue = reverse("review:queue")

    def listed(query):
        html = as_reviewer.get(queue, query).content.decode()
        return {job.short_id for job in (reply, refund) if job.short_id in html}

    assert listed({"type": "issue_refund"}) == {refund.short_id}
    assert listed({"class": "draft"}) == {reply.short_id}
    assert listed({"claim": "mine"}) == {refund.short_id}
    assert listed({"claim": "unclaimed"}) == {reply.short_id}
    assert listed({"claim": "bogus", "order": "bogus", "page": "x"}) == {
        reply.short_id,
        refund.short_id,
    }


def test_claim_edit_diff_and_approve_through_the_pages(as_reviewer, draft):
    detail = reverse("review:detail", args=[draft.pk])
    as_reviewer.post(reverse("review:claim", args=[draft.pk]))
    new_text = "Hi Dana,\n\nSorry your order arrived broken. A replacement ships tomorrow.\n"
    response = as_reviewer.post(reverse("review:edit", args=[draft.pk]), {"text": new_text})
    assert response.status_code == 302
    html = as_reviewer.get(detail).content.decode()
    assert "data-diff" in html
    assert "<del>We will send a new one today</del>" in html
    assert "<ins>A replacement ships tomorrow</ins>" in html
    assert 'href="?version=1"' in html and 'href="?version=2"' in html
    old = as_reviewer.get(detail, {"version": 1}).content.decode()
    assert "We will send a new one today." in old

    response = as_reviewer.post(reverse("review:approve", args=[draft.pk]), {"text": new_text})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == Status.COMPLETED
    assert Decision.objects.get(job=draft).kind == Decision.Kind.EDIT_APPROVE
    assert Artifact.objects.filter(job=draft, kind="text").count() == 2


def test_reject_without_reason_re_renders_with_400_and_a_message(as_reviewer, draft):
    as_reviewer.post(reverse("review:claim", args=[draft.pk]))
    response = as_reviewer.post(reverse("review:reject", args=[draft.pk]), {"reason": "  "})
    assert response.status_code == 400
    assert "Give a reason for rejecting" in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Status.NEEDS_REVIEW


def test_someone_elses_claim_blocks_with_409_naming_them(as_reviewer, draft, other_reviewer):
    services.claim_draft(job=draft, reviewer=other_reviewer)
    response = as_reviewer.post(reverse("review:approve", args=[draft.pk]))
    assert response.status_code == 409
    assert "Otto is working on this draft" in response.content.decode()


def test_own_job_detail_explains_four_eyes_and_refuses_with_403(client, workspace):
    reviewer = member_of(workspace, "reviewer")
    own = make_draft(workspace=workspace, submitter=reviewer)
    client.force_login(reviewer)
    page = client.get(reverse("review:detail", args=[own.pk])).content.decode()
    assert "another reviewer must decide" in page
    assert client.post(reverse("review:claim", args=[own.pk])).status_code == 403


def test_decision_moves_on_to_the_next_draft(as_reviewer, workspace, submitter, reviewer):
    first = make_draft(workspace=workspace, submitter=submitter)
    second = make_draft(workspace=workspace, submitter=submitter)
    services.claim_draft(job=first, reviewer=reviewer)
    response = as_reviewer.post(
        reverse("review:send-back", args=[first.pk]), {"notes": "Shorter, please."}
    )
    assert response.url == reverse("review:detail", args=[second.pk])


def test_model_output_html_is_inert_on_the_detail_page(as_reviewer, workspace, submitter):
    evil = make_draft(
        workspace=workspace,
        submitter=submitter,
        text='<script>window.__pwned=1</script>\n\n<img src=x onerror="window.__pwned=2">',
    )
    html = as_reviewer.get(reverse("review:detail", args=[evil.pk])).content.decode()
    assert "<script>window.__pwned" not in html
    assert "<img src=x" not in html and '<img src="x"' not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_bulk_approve_from_the_queue(as_reviewer, workspace, submitter):
    ReviewPolicy.objects.create(job_type="tag_ticket", sample_rate=1)
    tags = [make_draft(workspace=workspace, submitter=submitter, job_type="tag_ticket")]
    tags.append(make_draft(workspace=workspace, submitter=submitter, job_type="tag_ticket"))
    reply = make_draft(workspace=workspace, submitter=submitter)
    response = as_reviewer.post(
        reverse("review:bulk-approve"), {"job": [str(j.pk) for j in [*tags, reply]]}, follow=True
    )
    html = response.content.decode()
    assert "Approved 2 item(s)." in html and "Only low-risk items" in html
    assert {j.status for j in type(reply).objects.filter(pk__in=[t.pk for t in tags])} == {
        Status.COMPLETED
    }


def test_bulk_approve_with_malformed_ids_is_a_message_not_a_500(as_reviewer):
    response = as_reviewer.post(reverse("review:bulk-approve"), {"job": ["not-a-uuid"]})
    assert response.status_code == 302


def test_nav_shows_review_link_only_to_reviewers(client, as_reviewer, workspace):
    assert 'href="/review/"' in as_reviewer.get("/").content.decode()
    client.force_login(member_of(workspace))
    assert 'href="/review/"' not in client.get("/").content.decode()


@pytest.mark.parametrize("model", ["reviewpolicy", "reviewclaim", "decision", "releaserecord"])
def test_admin_audit_pages_load(admin_client, draft, reviewer, model):
    services.claim_draft(job=draft, reviewer=reviewer)
    decision = services.approve_draft(job=draft, reviewer=reviewer)
    assert admin_client.get(reverse(f"admin:review_{model}_changelist")).status_code == 200
    if model == "decision":
        page = admin_client.get(reverse("admin:review_decision_change", args=[decision.pk]))
        assert "We will send a new one today." in page.content.decode()
    if model == "reviewpolicy":
        assert admin_client.get(reverse("admin:review_reviewpolicy_add")).status_code == 200


def test_expired_claim_refuses_approval_and_keeps_the_typed_text(as_reviewer, draft, reviewer):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from review.models import CLAIM_LEASE

    services.claim_draft(job=draft, reviewer=reviewer)
    with time_machine.travel(timezone.now() + CLAIM_LEASE + timedelta(minutes=1)):
        response = as_reviewer.post(
            reverse("review:approve", args=[draft.pk]), {"text": "My careful rewrite."}
        )
    html = response.content.decode()
    assert response.status_code == 409
    assert "Your claim on this draft expired" in html
    assert "My careful rewrite." in html
    draft.refresh_from_db()
    assert draft.status == Status.NEEDS_REVIEW
