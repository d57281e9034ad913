"""The ops dashboard as a new workspace admin meets it in Chromium: the numbers, charts and
CSV exports agree with the jobs behind them, the window selector changes them, and the
dispatch control asks for confirmation and leaves an audit trail."""

import csv
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils.timezone import now
from playwright.sync_api import expect

from accounts.models import Role
from jobs.models import DispatchPause, FailureKind, Status
from ops.models import OpsAction
from tests.factories import JobFactory, WorkspaceFactory, member_of
from tests.ops.conftest import finished_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOUR, DAYS_AGO_3 = timedelta(hours=1), timedelta(days=3)
# (job type, model, status, attempt costs, finished ago, failure kind)
FINISHED = [
    ("summarize_document", "gpt-5-mini", Status.COMPLETED, ["0.010", "0.020"], HOUR, ""),  # retried
    ("summarize_document", "gpt-5-mini", Status.COMPLETED, ["0.030"], HOUR, ""),
    ("tag_ticket", "gpt-5-nano", Status.COMPLETED, ["0.002"], HOUR, ""),
    ("summarize_document", "gpt-5-mini", Status.FAILED, ["0.005"], HOUR, FailureKind.PROVIDER),
    ("summarize_document", "gpt-5-mini", Status.EXPIRED, ["0.004"], HOUR, ""),
    ("summarize_document", "gpt-5-mini", Status.CANCELED, [], HOUR, ""),
    ("summarize_document", "gpt-5-mini", Status.COMPLETED, ["0.100"], DAYS_AGO_3, ""),
    ("summarize_document", "gpt-5-mini", Status.FAILED, ["0.001"], DAYS_AGO_3, FailureKind.TIMEOUT),
]
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


def money(value):
    return str(Decimal(value).quantize(Decimal("0.000001")))


def seed(workspace):
    """The finished jobs above, plus open work: two queued jobs and one waiting for review."""
    jobs = [
        finished_job(
            workspace,
            status=status,
            costs=costs,
            ago=ago,
            fields={
                "job_type": job_type,
                "model": model,
                "failure_kind": kind,
                "failure_retryable": bool(kind),
            },
        )
        for job_type, model, status, costs, ago, kind in FINISHED
    ]
    JobFactory.create_batch(2, workspace=workspace, status=Status.QUEUED)
    JobFactory(workspace=workspace, status=Status.NEEDS_REVIEW)
    return jobs


def expected_cost_rows(window):
    """The cost table computed from FINISHED: [type, model, completed, spend, per job, wasted]."""
    groups = defaultdict(lambda: {"completed": 0, "spend": Decimal(0), "wasted": Decimal(0)})
    for job_type, model, status, costs, ago, _ in FINISHED:
        if ago > WINDOWS[window] or not costs:
            continue
        for key in ((job_type, model), ("all", "all")):
            group = groups[key]
            group["completed"] += status == Status.COMPLETED
            group["spend"] += sum(Decimal(c) for c in costs)
            if status != Status.COMPLETED:
                group["wasted"] += sum(Decimal(c) for c in costs)
    return [
        [*key, str(g["completed"]), money(g["spend"]), money(g["spend"] / g["completed"]),
         money(g["wasted"])]
        for key, g in sorted(groups.items(), key=lambda item: item[0] == ("all", "all"))
    ]  # fmt: skip


def table(page, key):
    """A panel's table as its reader sees it, after opening the "Table" disclosure."""
    panel = page.locator(f"#panel-{key}")
    details = panel.locator("details")
    if not details.evaluate("d => d.open"):
        details.locator("summary").click()
    rows = panel.locator("table tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]


def chart_values(page, key):
    """``{label: value}`` read from the bars' tooltips of a panel's SVG chart (the number,
    without the unit the chart writes after it)."""
    titles = page.locator(f"#panel-{key} svg rect title").all_text_contents()
    return {label: shown.split(" ", 1)[0] for label, shown in (t.rsplit(": ", 1) for t in titles)}


def download_csv(page, key):
    with page.expect_download() as download:
        page.locator(f"#panel-{key}").get_by_role("link", name="CSV").click()
    return list(csv.reader(Path(download.value.path()).read_text().splitlines()))


def completed_by_bucket(jobs, window):
    """Completed jobs per clock hour (24h) or calendar day (7d): the throughput labels."""
    label = "%Y-%m-%d %H:00" if window == "24h" else "%Y-%m-%d"
    counts = defaultdict(int)
    for job in jobs:
        if job.status == Status.COMPLETED and job.finished_at > now() - WINDOWS[window]:
            counts[job.finished_at.strftime(label)] += 1
    return dict(counts)


def drawn(values):
    return {label: int(value) for label, value in values.items() if value != "0"}


def cost_columns(rows):
    return [[r[0], r[1], r[2], r[3], r[4], r[7]] for r in rows]


@pytest.fixture
def workspace():
    return WorkspaceFactory(name="Acme Ops")


@pytest.fixture
def admin_page(page, log_in, workspace):
    """An admin's page that records every console error and uncaught exception."""
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(member_of(workspace, Role.ADMIN, username="olive"))
    yield page
    assert errors == []


def test_panels_charts_and_csv_agree_with_the_jobs(admin_page, workspace, screenshot):
    page, jobs = admin_page, seed(workspace)
    page.goto("/")
    page.get_by_role("link", name="Ops", exact=True).click()
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    screenshot(page, "ops-dashboard-24h")

    cost = table(page, "cost")
    assert cost_columns(cost) == expected_cost_rows("24h")
    assert [r[5:7] for r in cost] == [["500", "50"], ["100", "10"], ["600", "60"]]  # 100/10 each
    assert chart_values(page, "cost") == {
        f"{t} · {m}": per_job for t, m, _, _, per_job, _ in expected_cost_rows("24h")[:-1]
    }
    assert download_csv(page, "cost")[1:] == cost
    expect(page.locator("#panel-cost svg").first).to_contain_text("0.034500 USD per job")

    assert table(page, "queue") == [["needs_review", "background", "1"],
                                    ["queued", "background", "2"]]  # fmt: skip
    assert chart_values(page, "queue") == {"needs_review · background": "1",
                                           "queued · background": "2"}  # fmt: skip
    throughput = chart_values(page, "throughput")
    # one column per clock hour; the oldest hour is partly outside the window
    assert len(throughput) in (24, 25) and drawn(throughput) == completed_by_bucket(jobs, "24h")
    assert {r[0]: r[1] for r in download_csv(page, "throughput")[1:]} == throughput

    assert table(page, "failures") == [["provider", "1", "1", "0", "list"]]
    assert chart_values(page, "failures") == {"provider": "1"}
    assert download_csv(page, "failures") == [
        ["Kind", "Failed jobs", "Retryable", "Needs a person"], ["provider", "1", "1", "0"]
    ]  # fmt: skip
    page.locator("#panel-failures").get_by_role("link", name="list").click()
    expect(page.get_by_role("heading", name="Provider failures (24h)")).to_be_visible()
    failed = jobs[3]
    page.get_by_role("link", name=failed.short_id).click()
    page.wait_for_url(f"**/jobs/{failed.pk}/")
    expect(page.locator("[data-job-id]")).to_have_text(str(failed.pk))

    page.go_back()
    page.get_by_role("link", name="← Operations").click()
    page.locator(".ops-filters").get_by_label("Window").select_option("7d")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/ops/?*window=7d")
    screenshot(page, "ops-dashboard-7d")
    assert cost_columns(table(page, "cost")) == expected_cost_rows("7d")
    assert [r[:2] for r in table(page, "failures")] == [["provider", "1"], ["timeout", "1"]]
    assert len(chart_values(page, "failures")) == 2
    throughput = chart_values(page, "throughput")
    assert len(throughput) in (7, 8) and drawn(throughput) == completed_by_bucket(jobs, "7d")
    assert cost_columns(download_csv(page, "cost")[1:]) == expected_cost_rows("7d")


def dispatch_line(page):
    return page.locator("#controls li", has_text="Acme Ops")


def test_pause_then_resume_dispatch_asks_first_and_is_audited(admin_page, workspace):
    page = admin_page
    page.goto("/ops/")
    controls = dispatch_line(page)
    expect(controls).to_contain_text("dispatching normally")

    controls.get_by_label("Control").select_option("pause")
    controls.get_by_label("Reason").fill("provider incident")
    controls.get_by_role("button", name="Apply").click()  # not confirmed: the browser holds it
    assert controls.get_by_label("I mean it").evaluate("box => box.validity.valueMissing")
    assert not DispatchPause.objects.exists()

    controls.get_by_label("I mean it").check()
    controls.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("status")).to_contain_text("New background work in Acme Ops is held")
    expect(dispatch_line(page)).to_contain_text("Paused since")
    expect(dispatch_line(page)).to_contain_text("by olive (provider incident)")
    assert DispatchPause.objects.get(workspace=workspace).mode == DispatchPause.Mode.PAUSE

    dispatch_line(page).get_by_label("Resume new work in Acme Ops").check()
    dispatch_line(page).get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_contain_text("Dispatch resumed in Acme Ops.")
    expect(dispatch_line(page)).to_contain_text("dispatching normally")
    log = page.locator("section", has=page.get_by_role("heading", name="Recent operator actions"))
    expect(log).to_contain_text("olive: Resumed new background dispatch.")
    expect(log).to_contain_text("olive: Paused new background dispatch. provider incident")
    assert not DispatchPause.objects.exists()
    assert list(
        OpsAction.objects.order_by("created_at").values_list("kind", "actor__username")
    ) == [("pause", "olive"), ("resume", "olive")]


def test_a_member_has_no_ops_link_and_gets_a_404(page, log_in, workspace):
    log_in(member_of(workspace, username="mel"))
    page.goto("/")
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("My jobs")
    expect(page.get_by_role("link", name="Ops", exact=True)).to_have_count(0)
    assert page.goto("/ops/").status == 404
