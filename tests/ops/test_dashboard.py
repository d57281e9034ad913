import csv
import io
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from jobs.models import FailureKind, Job, Status
from ops.selectors import PANELS, WINDOWS, Reads, build_panel, percentile
from review.models import Decision
from tests.factories import JobFactory, WorkspaceFactory, member_of
from tests.ops.conftest import finished_job

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("ops:dashboard")


def _panel_table(html, key):
    table = re.search(rf'<table class="table" data-panel="{key}">(.*?)</table>', html, re.S)
    assert table, f"no table for {key}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]


def test_cost_per_completed_job_counts_every_attempt(admin_client, workspace):
    # two completed jobs, one after a failed attempt; one failed job: all of it is spend
    finished_job(workspace, costs=["0.010000", "0.020000"])
    finished_job(workspace, costs=["0.030000"])
    finished_job(
        workspace,
        status=Status.FAILED,
        costs=["0.005000"],
        fields={"failure_kind": FailureKind.PROVIDER},
    )
    finished_job(workspace, costs=["9.0"], ago=timedelta(days=2))  # outside the 24 h window
    spend = Decimal("0.010000") + Decimal("0.020000") + Decimal("0.030000") + Decimal("0.005")

    response = admin_client.get(DASHBOARD)

    cost = {row[0]: row for row in response.context["panels"][6].rows}
    assert response.context["panels"][6].key == "cost"
    summary = cost["summarize_document"]
    assert summary[2] == 2  # completed jobs
    assert summary[3] == spend
    assert summary[4] == (spend / 2).quantize(Decimal("0.000001"))
    assert summary[5] == 400 and summary[6] == 40  # tokens of all four attempts
    assert summary[7] == Decimal("0.005000")  # wasted on the failed job
    assert cost["all"][4] == summary[4]


def test_latency_p50_and_p95_match_the_rows(admin_client, workspace):
    queue_waits = [1, 2, 3, 4, 5, 6, 7, 8, 9, 50]
    for wait in queue_waits:
        finished_job(workspace, started=wait, provider_finished=wait + 10, total=wait + 20)

    response = admin_client.get(DASHBOARD)

    panel = next(p for p in response.context["panels"] if p.key == "latency")
    rows = {(row[0], row[1]): row for row in panel.rows}
    ordered = sorted(queue_waits)
    # linear interpolation: rank (n-1)·p
    expected_p95 = ordered[8] + (ordered[9] - ordered[8]) * ((len(ordered) - 1) * 0.95 - 8)
    expected_p50 = (ordered[4] + ordered[5]) / 2
    assert rows[("summarize_document", "queue wait")][2:] == [
        10,
        round(expected_p50, 1),
        round(expected_p95, 1),
    ]
    assert rows[("summarize_document", "provider time")][3:] == [10.0, 10.0]
    assert rows[("summarize_document", "total")][4] == round(expected_p95 + 20, 1)
    assert ("summarize_document", "review wait") not in rows


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([4], 0.95) == 4
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile(list(range(1, 21)), 0.95) == pytest.approx(19.05)


def test_review_rates_and_time_to_decision(admin_client, workspace):
    reviewer = member_of(workspace, Role.REVIEWER)
    for kind, wait in [
        (Decision.Kind.APPROVE, 60),
        (Decision.Kind.EDIT_APPROVE, 120),
        (Decision.Kind.REJECT, 180),
        (Decision.Kind.APPROVE, 240),
    ]:
        job = finished_job(workspace, started=1, provider_finished=2, total=500)
        decision = Decision.objects.create(job=job, reviewer=reviewer, kind=kind)
        Decision.objects.filter(pk=decision.pk).update(
            created_at=job.provider_finished_at + timedelta(seconds=wait)
        )

    response = admin_client.get(DASHBOARD)

    panel = next(p for p in response.context["panels"] if p.key == "review")
    (row,) = panel.rows
    assert row[:5] == ["summarize_document", 4, 0.75, 0.25, 0.25]
    assert row[7] == 150.0  # p50 of 60, 120, 180, 240
    assert row[8] == pytest.approx(231.0)


def test_queue_failures_and_sampling_are_counted(admin_client, workspace):
    JobFactory.create_batch(2, workspace=workspace, status=Status.QUEUED)
    JobFactory(workspace=workspace, status=Status.RUNNING, lane="stream")
    finished_job(
        workspace,
        status=Status.FAILED,
        fields={"failure_kind": FailureKind.TIMEOUT, "failure_retryable": True},
    )
    JobFactory(
        workspace=workspace,
        job_type="tag_ticket",
        authority_class="low_risk_write",
        status=Status.COMPLETED,
        review_state="not_sampled",
    )

    response = admin_client.get(DASHBOARD)
    panels = {p.key: p for p in response.context["panels"]}

    assert panels["queue"].rows == [["queued", "background", 2], ["running", "stream", 1]]
    assert panels["failures"].rows == [["timeout", 1, 1, 0]]
    assert panels["sampling"].rows == [["tag_ticket", "not_sampled", 1]]
    assert reverse("ops:failures", args=["timeout"]) in response.content.decode()
    assert "<svg" in response.content.decode()


def test_failure_list_links_to_the_jobs(admin_client, workspace):
    job = finished_job(workspace, status=Status.FAILED, fields={"failure_kind": "provider"})
    finished_job(workspace, status=Status.FAILED, fields={"failure_kind": "input"})

    response = admin_client.get(reverse("ops:failures", args=["provider"]))

    assert list(response.context["jobs"]) == [job]
    assert reverse("job-detail", args=[job.pk]) in response.content.decode()


def test_failure_list_shows_fifty_a_page_newest_first(admin_client, workspace):
    jobs = [
        finished_job(
            workspace,
            status=Status.FAILED,
            ago=timedelta(minutes=minutes),
            fields={"failure_kind": "provider"},
        )
        for minutes in range(1, 53)
    ]
    url = reverse("ops:failures", args=["provider"])

    first = admin_client.get(url)
    second = admin_client.get(url, {"page": 2})

    assert list(first.context["jobs"]) == jobs[:50]
    assert 'href="?window=24h&page=2" rel="next"' in first.content.decode()
    assert list(second.context["jobs"]) == jobs[50:]
    assert 'href="?window=24h&page=1" rel="prev"' in second.content.decode()
    assert 'rel="next"' not in second.content.decode()
    assert list(admin_client.get(url, {"page": "x"}).context["jobs"]) == jobs[:50]


def _varied_jobs(workspace):
    """Jobs whose phases, review paths, hours and due times exercise every panel's numbers."""
    reviewer = member_of(workspace, Role.REVIEWER)
    for i in range(40):
        fields = {"job_type": ("summarize_document", "draft_support_reply", "tag_ticket")[i % 3]}
        times = {"started": 1 + i * 0.37, "total": 50 + i * 13.123457}
        if i % 5:  # some jobs never reached the provider's answer
            times["provider_finished"] = times["started"] + (i % 7) * 2.5 + 0.000001 * i
        if i % 4 == 0:
            times["reviewed"] = times["total"] - 3.3
        elif i % 4 == 1:
            fields["review_state"] = "approved"  # reviewed, no review stamp: completion counts
        job = finished_job(
            workspace,
            costs=["0.001234"] * (1 + i % 2),
            ago=timedelta(hours=i * 7 + 0.25, microseconds=i),
            fields=fields,
            **times,
        )
        if job.provider_finished_at and i % 3 == 0:
            kinds = (Decision.Kind.APPROVE, Decision.Kind.REJECT, Decision.Kind.SEND_BACK)
            kind = kinds[i % 9 // 3]
            decision = Decision.objects.create(job=job, reviewer=reviewer, kind=kind)
            Decision.objects.filter(pk=decision.pk).update(
                created_at=job.provider_finished_at + timedelta(seconds=7.654321 * i)
            )
    now = timezone.now()
    for i in range(9):
        JobFactory(
            workspace=workspace,
            status=(Status.QUEUED, Status.RUNNING)[i % 2],
            next_poll_at=now - timedelta(seconds=3.141593 * i * i),
        )
    finished_job(workspace, status=Status.FAILED, fields={"failure_kind": "timeout"})


@pytest.mark.pg
@pytest.mark.parametrize("window", list(WINDOWS))
def test_database_and_python_panels_give_the_same_numbers(workspace, window):
    _varied_jobs(workspace)
    now = timezone.now()

    def panels(in_database):
        reads = Reads([workspace.pk], since=now - WINDOWS[window], now=now, in_database=in_database)
        return {key: (p.rows, p.chart) for key in PANELS for p in [build_panel(key, reads)]}

    in_python, in_database = panels(False), panels(True)

    assert in_database == in_python
    assert len(in_database["latency"][0]) >= 6 and in_database["poll"][0][0][0] == 9
    assert any(row[7] is not None for row in in_database["review"][0])


def test_panel_queries_stay_constant_as_data_grows(
    admin_client, workspace, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def seed(n):
        for _ in range(n):
            finished_job(workspace, costs=["0.01", "0.02"], started=1, provider_finished=5)
            finished_job(workspace, status=Status.FAILED, fields={"failure_kind": "tool"})
            JobFactory(workspace=workspace, status=Status.QUEUED)

    seed(1)
    admin_client.get(DASHBOARD)  # warm: the circuit row, sessions
    with CaptureQueriesContext(connection) as small:
        assert admin_client.get(DASHBOARD).status_code == 200
    seed(20)
    with django_assert_num_queries(len(small.captured_queries)):
        assert admin_client.get(DASHBOARD).status_code == 200
    assert len(small.captured_queries) <= 20


def test_throughput_counts_each_job_under_its_own_clock_hour_and_day(admin_client, workspace):
    jobs = [finished_job(workspace, ago=timedelta(hours=h)) for h in (1, 5, 5, 72)]

    for window, label in (("24h", "%Y-%m-%d %H:00"), ("7d", "%Y-%m-%d")):
        response = admin_client.get(DASHBOARD, {"window": window})
        panel = next(p for p in response.context["panels"] if p.key == "throughput")
        since = timezone.now() - WINDOWS[window]
        expected = Counter(j.finished_at.strftime(label) for j in jobs if j.finished_at >= since)
        assert {row[0]: row[1] for row in panel.rows if row[1]} == expected


@pytest.mark.parametrize("panel", ["cost", "latency", "failures", "queue", "throughput"])
def test_csv_export_matches_the_table(admin_client, workspace, panel):
    finished_job(workspace, costs=["0.012345"], started=3, provider_finished=9)
    finished_job(workspace, status=Status.FAILED, costs=["0.5"], fields={"failure_kind": "tool"})
    JobFactory(workspace=workspace, status=Status.QUEUED)

    table = _panel_table(admin_client.get(DASHBOARD).content.decode(), panel)
    response = admin_client.get(reverse("ops:export", args=[panel]))

    assert response["Content-Type"].startswith("text/csv")
    exported = list(csv.reader(io.StringIO(response.content.decode())))
    if panel == "failures":  # the table adds a column of links to the jobs
        table = [row[:-1] for row in table]
    assert exported == table
    assert len(exported) > 1


def test_unknown_window_and_panel_are_clear_errors(admin_client):
    assert admin_client.get(DASHBOARD, {"window": "1y"}).status_code == 400
    assert admin_client.get(reverse("ops:export", args=["nope"])).status_code == 404


@pytest.mark.parametrize("role", [Role.MEMBER, Role.REVIEWER])
def test_non_admins_get_404(client, workspace, role):
    client.force_login(member_of(workspace, role))
    assert client.get(DASHBOARD).status_code == 404
    assert client.get(reverse("ops:export", args=["cost"])).status_code == 404
    assert client.post(reverse("ops:dispatch"), {"workspace": workspace.pk}).status_code == 404


def test_anonymous_is_sent_to_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_numbers_are_scoped_to_the_admins_workspaces(admin_client, admin, workspace):
    other = WorkspaceFactory()
    finished_job(other, costs=["5.0"])
    JobFactory.create_batch(3, workspace=other, status=Status.QUEUED)
    finished_job(workspace, costs=["0.25"])

    response = admin_client.get(DASHBOARD)
    panels = {p.key: p for p in response.context["panels"]}

    assert panels["queue"].rows == []
    assert [row[3] for row in panels["cost"].rows] == [Decimal("0.25")] * 2
    assert admin_client.get(DASHBOARD, {"workspace": other.pk}).status_code == 404


def test_admin_of_two_workspaces_can_narrow_to_one(admin_client, admin, workspace):
    second = WorkspaceFactory()
    member_of(second, Role.MEMBER)
    from tests.factories import MembershipFactory

    MembershipFactory(user=admin, workspace=second, role=Role.ADMIN)
    JobFactory(workspace=workspace, status=Status.QUEUED)
    JobFactory.create_batch(2, workspace=second, status=Status.QUEUED)

    both = admin_client.get(DASHBOARD).context["panels"][0].rows
    one = admin_client.get(DASHBOARD, {"workspace": second.pk}).context["panels"][0].rows

    assert both == [["queued", "background", 3]]
    assert one == [["queued", "background", 2]]


def test_nav_link_only_for_workspace_admins(client, workspace, admin):
    client.force_login(member_of(workspace))
    assert DASHBOARD not in client.get(reverse("home")).content.decode()
    client.force_login(admin)
    assert DASHBOARD in client.get(reverse("home")).content.decode()


def test_archived_jobs_count_in_cost_but_not_in_failure_lists(admin_client, workspace):
    job = finished_job(
        workspace, status=Status.FAILED, costs=["0.5"], fields={"failure_kind": "tool"}
    )
    Job.objects.filter(pk=job.pk).update(is_archived=True)

    panels = {p.key: p for p in admin_client.get(DASHBOARD).context["panels"]}

    assert panels["failures"].rows == []
    assert panels["cost"].rows[0][7] == Decimal("0.500000")


@pytest.mark.parametrize("in_database", [False, pytest.param(True, marks=pytest.mark.pg)])
def test_provider_time_is_the_answering_attempts_not_a_retried_jobs_whole_life(
    workspace, in_database
):
    """A job whose first attempt failed, was retried half an hour later and answered in 4 s
    spent 4 s at the provider for its answer, not 30 minutes."""
    finished_job(
        workspace,
        costs=["0.01", "0.01"],
        started=5,
        attempt_started=1800,
        provider_finished=1804,
        total=1810,
    )
    finished_job(workspace, costs=["0.01"], started=2, provider_finished=8, total=9)
    now = timezone.now()
    reads = Reads([workspace.pk], since=now - timedelta(days=1), now=now, in_database=in_database)
    rows = {(r[0], r[1]): r for r in build_panel("latency", reads).rows}
    assert rows[("summarize_document", "provider time")][2:] == [2, 5.0, 5.9]
    assert rows[("summarize_document", "queue wait")][3] == 3.5  # to the first start (5 s, 2 s)


def test_the_tools_panel_counts_calls_by_tool_with_their_outcomes_and_approval_waits(
    workspace, admin
):
    from jobs.models import Attempt, RunStep, ToolCall

    job = JobFactory(workspace=workspace, job_type="resolve_ticket")
    attempt = Attempt.objects.create(job=job, number=1)
    step = RunStep.objects.create(job=job, attempt=attempt, number=1, response_id="resp_t1")
    now = timezone.now()

    def call(n, name, state, *, waited=None):
        row = ToolCall.objects.create(
            job=job,
            step=step,
            call_id=f"call_{n}",
            name=name,
            state=state,
            authority_class="read_only",
        )
        if waited is not None:
            ToolCall.objects.filter(pk=row.pk).update(
                created_at=now - timedelta(seconds=waited), started_at=now, decided_by=admin
            )

    call(1, "lookup_order", ToolCall.State.SUCCEEDED)
    call(2, "lookup_order", ToolCall.State.FAILED)
    call(3, "email_customer", ToolCall.State.SUCCEEDED, waited=40)
    call(4, "email_customer", ToolCall.State.REJECTED)
    call(5, "email_customer", ToolCall.State.AWAITING_APPROVAL)
    call(6, "email_customer", ToolCall.State.TIMED_OUT)
    reads = Reads([workspace.pk], since=now - timedelta(days=1), now=now, in_database=False)
    rows = {row[0]: row for row in build_panel("tools", reads).rows}
    assert rows["lookup_order"] == ["lookup_order", 2, 1, 1, 0, 0, 0, None]
    assert rows["email_customer"] == ["email_customer", 4, 1, 0, 1, 1, 1, 40.0]
