"""The busy pages cost a fixed number of SQL queries, however many jobs there are.

My jobs, the review queue and the ops dashboard (with its CSV exports and failure list) are
the pages people keep open. Each is read at 5 jobs and again at 50 jobs of every kind (all
statuses and lanes, attempts with costs, outputs, events, review decisions, live claims,
notifications): the count must be the same both times and at most ``MAX_QUERIES``. A per-row
query (an N+1) shows up as a count that grows; a page that reads too much shows up as a count
over the limit. ``bench/p6_pages.py`` measures the same pages at 100 vs 100k jobs.
"""

from datetime import timedelta
from decimal import Decimal
from itertools import cycle

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from jobs.models import Artifact, Attempt, FailureKind, Job, JobEvent, ReviewState, Status
from notifications.models import Notification
from ops.selectors import PANELS
from review.models import CLAIM_LEASE, Decision, ReviewClaim
from tests.factories import JobFactory, member_of

pytestmark = pytest.mark.django_db

MAX_QUERIES = 13  # the ops page: its reads, one of them the tool-calls panel

# (job type, authority class, lane, status, review state): one of each kind of job a page shows
KINDS = [
    ("summarize_document", "read_only", "background", Status.COMPLETED, ReviewState.NOT_REQUIRED),
    ("draft_support_reply", "draft", "stream", Status.NEEDS_REVIEW, ReviewState.PENDING),
    ("issue_refund", "external_effect", "background", Status.NEEDS_REVIEW, ReviewState.ESCALATED),
    ("tag_ticket", "low_risk_write", "sync", Status.COMPLETED, ReviewState.NOT_SAMPLED),
    ("draft_support_reply", "draft", "stream", Status.COMPLETED, ReviewState.APPROVED),
    ("summarize_document", "read_only", "background", Status.FAILED, ""),
    ("summarize_document", "read_only", "background", Status.RUNNING, ""),
    ("tag_ticket", "low_risk_write", "sync", Status.QUEUED, ""),
    ("draft_support_reply", "draft", "stream", Status.CANCELED, ""),
    ("issue_refund", "external_effect", "background", Status.FAILED, ReviewState.REJECTED),
]


@pytest.fixture
def people(workspace, submitter):
    return {
        "submitter": submitter,
        "reviewer": member_of(workspace, Role.REVIEWER),
        "other_reviewer": member_of(workspace, Role.REVIEWER),
        "admin": member_of(workspace, Role.ADMIN),
    }


def add_jobs(workspace, people, count):
    """``count`` jobs of every kind, each with the rows a finished (or waiting) job has."""
    now = timezone.now()
    kinds = cycle(KINDS)
    for _ in range(count):
        job_type, authority, lane, status, review_state = next(kinds)
        created = now - timedelta(hours=2)
        finished = (
            now - timedelta(minutes=30)
            if status in (Status.COMPLETED, Status.FAILED, Status.CANCELED)
            else None
        )
        job = JobFactory(
            workspace=workspace,
            submitter=people["submitter"],
            job_type=job_type,
            authority_class=authority,
            lane=lane,
            status=status,
            review_state=review_state,
            attempt_count=0 if status == Status.QUEUED else 1,
            next_poll_at=now - timedelta(seconds=5)
            if status in (Status.QUEUED, Status.RUNNING)
            else None,
            failure_kind=FailureKind.PROVIDER if status == Status.FAILED else "",
            failure_retryable=status == Status.FAILED,
        )
        Job.objects.filter(pk=job.pk).update(
            created_at=created,
            started_at=created + timedelta(seconds=3),
            provider_finished_at=created + timedelta(seconds=40),
            reviewed_at=finished if review_state == ReviewState.APPROVED else None,
            completed_at=finished if status == Status.COMPLETED else None,
            finished_at=finished,
        )
        JobEvent.objects.create(
            job=job, kind="submitted", actor=people["submitter"], actor_label="s"
        )
        if status == Status.QUEUED:
            continue
        attempt = Attempt.objects.create(
            job=job,
            number=1,
            state=Attempt.State.IN_FLIGHT if status == Status.RUNNING else Attempt.State.SUCCEEDED,
            cost=Decimal("0.0012"),
            input_tokens=900,
            output_tokens=120,
        )
        event = JobEvent.objects.create(
            job=job, kind=status, actor_label="system:worker", to_status=status
        )
        if status in (Status.COMPLETED, Status.NEEDS_REVIEW):
            artifact = Artifact.objects.create(
                job=job, attempt=attempt, kind="text", version=1, text="Draft."
            )
            Notification.objects.create(
                user=people["submitter"],
                job=job,
                event=event,
                topic=str(status),
                title="Job update",
            )
        if status == Status.NEEDS_REVIEW and review_state == ReviewState.PENDING:
            ReviewClaim.objects.create(
                job=job, reviewer=people["other_reviewer"], expires_at=now + CLAIM_LEASE
            )
        if review_state in (ReviewState.APPROVED, ReviewState.REJECTED):
            Decision.objects.create(
                job=job,
                reviewer=people["reviewer"],
                kind=Decision.Kind.APPROVE
                if review_state == ReviewState.APPROVED
                else Decision.Kind.REJECT,
                artifact=artifact if review_state == ReviewState.APPROVED else None,
                artifact_version=1,
            )


def pages(workspace):
    """(who looks, URL) for every page under guarantee."""
    return [
        ("submitter", reverse("home")),
        ("submitter", reverse("home") + "?status=completed&page=2"),
        ("admin", reverse("home")),
        ("reviewer", reverse("review:queue")),
        ("reviewer", reverse("review:queue") + "?claim=others&order=priority"),
        ("admin", reverse("ops:dashboard")),
        ("admin", reverse("ops:dashboard") + "?window=30d"),
        ("admin", reverse("ops:dashboard") + f"?workspace={workspace.pk}"),
        ("admin", reverse("ops:failures", args=["provider"])),
        *[("admin", reverse("ops:export", args=[panel])) for panel in PANELS],
    ]


def queries_of(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def test_busy_pages_cost_the_same_few_queries_at_5_and_at_50_jobs(workspace, people):
    clients = {}
    for role in ("submitter", "reviewer", "admin"):
        clients[role] = Client()
        clients[role].force_login(people[role])
    add_jobs(workspace, people, 5)
    for role, url in pages(workspace):
        clients[role].get(url)  # the first look ever creates the circuit breaker's row
    at_5 = {url: queries_of(clients[role], url) for role, url in pages(workspace)}

    add_jobs(workspace, people, 45)
    at_50 = {url: queries_of(clients[role], url) for role, url in pages(workspace)}

    assert at_50 == at_5
    over = {url: count for url, count in at_50.items() if count > MAX_QUERIES}
    assert not over, f"more than {MAX_QUERIES} queries: {over}"
