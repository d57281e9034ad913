"""The ops dashboard's reads. The panels share a few reads (``Reads``): one grouped pass over
the jobs that count *now* or failed/were sampled in the window (``job_census``), one read of the
completed jobs in the window (latency and throughput), the attempts' costs, the decisions, and
the provider's health; so the page costs the same number of queries at 100 jobs as at 100k,
scoped to the admin's workspaces. Durations are seconds; money is the price table's currency.

On PostgreSQL the percentiles and hour/day buckets are computed by the database
(``ops.aggregates``), so the page reads one row per group, not per job; elsewhere (SQLite) the
same numbers are computed here in Python from the rows. ``Reads(in_database=…)`` picks either.

Windows select jobs by when they *finished* (``Job.finished_at``, indexed with the workspace),
except review decisions (by decision time) and sampling (by creation, as sampled jobs may still
wait). Archived jobs count in the numbers (archiving hides a job from lists, not from the books)
but not in the failure lists an operator acts on.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from decimal import Decimal
from functools import cached_property

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)

from accounts.models import Role
from accounts.selectors import memberships_of
from jobs.execution import circuit
from jobs.models import (
    ACTIVE,
    OPEN,
    TERMINAL,
    Attempt,
    DispatchPause,
    Job,
    PumpSlot,
    ReviewState,
    Status,
    ToolCall,
)
from review.models import Decision

from . import aggregates
from .models import OpsAction

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
WASTED = (Status.FAILED, Status.CANCELED, Status.EXPIRED)
PHASES = aggregates.PHASES
FINAL_DECISIONS = (Decision.Kind.APPROVE, Decision.Kind.EDIT_APPROVE, Decision.Kind.REJECT)
REVIEWED_STATES = (ReviewState.APPROVED, ReviewState.REJECTED)


@dataclass
class Panel:
    """One dashboard panel: the rows its table, chart and CSV export all show."""

    key: str
    title: str
    columns: list
    rows: list = field(default_factory=list)
    chart: list = field(default_factory=list)  # [(label, value)] for the bar chart
    chart_kind: str = "bars"
    chart_unit: str = ""  # what the chart's values count, shown beside each value
    note: str = ""


def admin_workspaces(user):
    """The workspaces where ``user`` is an admin: the ops dashboard's whole scope."""
    workspaces = [m.workspace for m in memberships_of(user) if m.role == Role.ADMIN]
    return sorted(workspaces, key=lambda workspace: workspace.name)


def percentile(values, fraction):
    """Linear-interpolated percentile (PostgreSQL's ``percentile_cont``); ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _seconds(later, earlier):
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def _round(value, places=1):
    return None if value is None else round(value, places)


def _ratio(part, whole):
    return round(part / whole, 3) if whole else None


# --- now ---------------------------------------------------------------------------------


def job_census(workspace_ids, *, since, now, with_due=True):
    """One grouped pass over the jobs the queue, poll, failure and sampling panels count:
    open jobs, failed jobs finished in the window and sampled low-risk jobs created in it.

    Each row is a group (workspace, status, lane, job type, review state, failure kind, and
    with ``with_due`` ``due_at`` for active jobs past their next look, for poll slip in Python)
    with the counts each panel needs, so the panels split it in Python instead of asking the
    database four times."""
    is_open = Q(status__in=OPEN)
    is_failed = Q(status=Status.FAILED, is_archived=False, finished_at__gte=since)
    is_sampled = Q(authority_class="low_risk_write", created_at__gte=since) & ~Q(
        review_state=ReviewState.NONE
    )
    is_due = Q(status__in=ACTIVE, next_poll_at__lte=now)
    due_at = (
        Case(When(is_due, then=F("next_poll_at")), default=None)
        if with_due
        else Value(None, output_field=DateTimeField())
    )
    return list(
        Job.objects.filter(workspace_id__in=workspace_ids)
        .filter(is_open | is_failed | is_sampled)
        .annotate(due_at=due_at)
        .values(
            "workspace_id", "status", "lane", "job_type", "review_state", "failure_kind", "due_at"
        )
        .annotate(
            open=Count("id", filter=is_open),
            failed=Count("id", filter=is_failed),
            retryable=Count(
                "id",
                filter=is_failed & Q(failure_retryable=True, attempt_count__lt=F("attempt_limit")),
            ),
            needs_human=Count("id", filter=is_failed & Q(needs_human=True)),
            sampled=Count("id", filter=is_sampled),
        )
        .order_by()
    )


def _tally(rows, keys, count):
    """``{key tuple: summed count}`` over census rows with a non-zero ``count``, sorted."""
    totals = defaultdict(int)
    for row in rows:
        if row[count]:
            totals[tuple(row[key] for key in keys)] += row[count]
    return dict(sorted(totals.items()))


def queue_panel(census):
    table = [
        [status, lane, jobs]
        for (status, lane), jobs in _tally(census, ("status", "lane"), "open").items()
    ]
    return Panel(
        "queue",
        "Queue depth and in-flight jobs",
        ["Status", "Lane", "Jobs"],
        table,
        chart=[(f"{status} · {lane}", jobs) for status, lane, jobs in table],
        chart_unit="jobs",
    )


def poll_stats(census, now):
    """``(due jobs, p50, p95, max)`` of poll slip, from a census read ``with_due``."""
    slips = [
        _seconds(now, row["due_at"])
        for row in census
        if row["due_at"] is not None
        for _ in range(row["open"])
    ]
    top = max(slips) if slips else None
    return len(slips), percentile(slips, 0.5), percentile(slips, 0.95), top


def poll_panel(stats):
    due, p50, p95, top = stats
    return Panel(
        "poll",
        "Jobs due for a look, and poll slip",
        ["Due now", "Slip p50 (s)", "Slip p95 (s)", "Slip max (s)"],
        [[due, _round(p50), _round(p95), _round(top)]],
        note="Slip: how long past its next poll time an active job has waited.",
    )


def provider_panel(now):
    """Provider health is shared by every workspace: these numbers are not workspace-scoped."""
    health = circuit.health(now)
    total = health["ok"] + health["failed"]
    beats = list(PumpSlot.objects.order_by("slot").values_list("slot", "heartbeat_at"))
    rows = [
        ["Calls in the last minute", total],
        ["Errors", health["failed"]],
        ["Error rate", _ratio(health["failed"], total)],
        ["429 responses", health["rate_limited"]],
        ["Circuit breaker", health["state"]],
    ]
    rows += [
        [f"Pump {slot} heartbeat age (s)", _round(_seconds(now, beat))] for slot, beat in beats
    ]
    return Panel(
        "provider",
        "Provider health",
        ["Measure", "Value"],
        rows,
        note="Across all workspaces: the provider and its circuit breaker are shared.",
    )


# --- over a window -------------------------------------------------------------------------


# The attempt whose answer completed the job: its start bounds the provider time (a retried or
# re-queued job's first start would count its whole life).
_final_attempt = Attempt.objects.filter(job=OuterRef("pk")).order_by("-number")


def completed_jobs(workspace_ids, since):
    """The phase times of the jobs completed in the window: latency's and throughput's rows."""
    return list(
        Job.objects.filter(
            workspace_id__in=workspace_ids, status=Status.COMPLETED, finished_at__gte=since
        )
        .annotate(attempt_started=Subquery(_final_attempt.values("started_at")[:1]))
        .values_list(
            "job_type",
            "created_at",
            "started_at",
            "provider_finished_at",
            "reviewed_at",
            "completed_at",
            "finished_at",
            "review_state",
            "attempt_started",
        )
        .order_by()
    )


def latency_stats(rows):
    """``{job type: {phase: (jobs, p50, p95)}}`` from ``completed_jobs`` rows (phases with
    no value left out)."""
    phases = defaultdict(lambda: {phase: [] for phase in PHASES})
    for row in rows:
        job_type, created, started, provided, reviewed, completed, finished, state = row[:8]
        attempt_started = row[8] or started
        values = phases[job_type]
        for phase, seconds in (
            ("queue wait", _seconds(started, created)),
            ("provider time", _seconds(provided, attempt_started)),
            ("total", _seconds(finished, created)),
        ):
            if seconds is not None:
                values[phase].append(seconds)
        if reviewed or state in REVIEWED_STATES:
            seconds = _seconds(reviewed or completed, provided)
            if seconds is not None:
                values["review wait"].append(seconds)
    return {
        job_type: {
            phase: (len(values), percentile(values, 0.5), percentile(values, 0.95))
            for phase, values in by_phase.items()
            if values
        }
        for job_type, by_phase in phases.items()
    }


def latency_panel(stats):
    table = [
        [job_type, phase, jobs, _round(p50), _round(p95)]
        for job_type in sorted(stats)
        for phase in PHASES
        if phase in stats[job_type]
        for jobs, p50, p95 in [stats[job_type][phase]]
    ]
    return Panel(
        "latency",
        "Latency by phase (completed jobs)",
        ["Job type", "Phase", "Jobs", "p50 (s)", "p95 (s)"],
        table,
        chart=[(f"{row[0]} · {row[1]} p95", row[4]) for row in table],
        chart_unit="s",
        note="Provider time is the final attempt's, from its start to the model's answer; "
        "queue wait runs from submission to the first start.",
    )


def _clock_floor(moment, hourly):
    """The start of the UTC clock hour (or day) holding ``moment``."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment if hourly else moment.replace(hour=0)


def is_hourly(since, now):
    """Throughput counts per clock hour over a 24 h window, per UTC day over longer ones."""
    return (now - since) <= timedelta(hours=24)


def throughput_stats(rows, hourly):
    """``{bucket start: completed jobs}`` from ``completed_jobs`` rows."""
    counts = defaultdict(int)
    for row in rows:
        counts[_clock_floor(row[6], hourly)] += 1
    return dict(counts)


def throughput_panel(stats, since, now):
    """Completed jobs per clock hour (24 h window) or UTC day (longer windows). Buckets are
    whole hours or days, as their labels say; the first one starts before ``since`` and counts
    only the part of it inside the window (a job stamped after ``now`` counts in the last)."""
    hourly = is_hourly(since, now)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    start = _clock_floor(since, hourly)
    buckets = math.ceil((now - start) / step)
    counts = [0] * buckets
    for bucket, count in stats.items():
        counts[min((bucket - start) // step, buckets - 1)] += count
    hours = step.total_seconds() / 3600
    table = [
        [
            (start + step * i).strftime("%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"),
            count,
            round(count / hours, 2),
        ]
        for i, count in enumerate(counts)
    ]
    return Panel(
        "throughput",
        "Throughput (completed jobs)",
        ["From (UTC)", "Completed", "Per hour"],
        table,
        chart=[(row[0], row[1]) for row in table],
        chart_kind="columns",
        chart_unit="jobs",
    )


def failures_panel(census):
    counts = {
        key: _tally(census, ("failure_kind",), key)
        for key in ("failed", "retryable", "needs_human")
    }
    table = sorted(
        (
            [
                kind or "unknown",
                jobs,
                counts["retryable"].get((kind,), 0),
                counts["needs_human"].get((kind,), 0),
            ]
            for (kind,), jobs in counts["failed"].items()
        ),
        key=lambda row: (-row[1], row[0]),
    )
    return Panel(
        "failures",
        "Failures by kind",
        ["Kind", "Failed jobs", "Retryable", "Needs a person"],
        table,
        chart=[(row[0], row[1]) for row in table],
        chart_unit="jobs",
    )


def cost_panel(workspace_ids, since):
    """All attempts' cost of the jobs that finished in the window (failed and retried attempts,
    and attempts of jobs that never completed, included) divided by the jobs that completed."""
    rows = (
        Attempt.objects.filter(
            job__workspace_id__in=workspace_ids,
            job__status__in=TERMINAL,
            job__finished_at__gte=since,
        )
        .values("job__job_type", "job__model")
        .annotate(
            spend=Sum("cost"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            completed=Count("job", filter=Q(job__status=Status.COMPLETED), distinct=True),
            wasted=Sum("cost", filter=Q(job__status__in=WASTED)),
        )
        .order_by("job__job_type", "job__model")
    )
    table, totals = [], defaultdict(lambda: Decimal(0))
    for row in rows:
        spend, wasted = row["spend"] or Decimal(0), row["wasted"] or Decimal(0)
        per_job = spend / row["completed"] if row["completed"] else None
        table.append(
            [
                row["job__job_type"],
                row["job__model"],
                row["completed"],
                _money(spend),
                _money(per_job),
                row["input_tokens"] or 0,
                row["output_tokens"] or 0,
                _money(wasted),
            ]
        )
        for key in ("spend", "wasted", "completed", "input_tokens", "output_tokens"):
            totals[key] += row[key] or 0
    if table:
        per_job = totals["spend"] / totals["completed"] if totals["completed"] else None
        table.append(
            [
                "all",
                "all",
                int(totals["completed"]),
                _money(totals["spend"]),
                _money(per_job),
                int(totals["input_tokens"]),
                int(totals["output_tokens"]),
                _money(totals["wasted"]),
            ]
        )
    return Panel(
        "cost",
        "Cost per completed job",
        [
            "Job type",
            "Model",
            "Completed jobs",
            "Spend",
            "Cost per completed job",
            "Input tokens",
            "Output tokens",
            "Wasted (failed/canceled/expired)",
        ],
        table,
        chart=[(f"{row[0]} · {row[1]}", row[4] or 0) for row in table if row[0] != "all"],
        chart_unit="USD per job",
        note="Spend counts every attempt of the jobs finished in the window, failed and "
        "retried ones included; wasted is the part spent on jobs that did not complete.",
    )


def _money(value):
    return None if value is None else Decimal(value).quantize(Decimal("0.000001"))


def review_stats(workspace_ids, since):
    """``{job type: (Counter of decision kinds, p50, p95 of time to decision)}``; time to
    decision counts final decisions of answered jobs."""
    decisions = Decision.objects.filter(
        job__workspace_id__in=workspace_ids, created_at__gte=since
    ).values_list("job__job_type", "kind", "created_at", "job__provider_finished_at")
    kinds = defaultdict(lambda: defaultdict(int))
    waits = defaultdict(list)
    for job_type, kind, decided, provided in decisions:
        kinds[job_type][kind] += 1
        if kind in FINAL_DECISIONS and provided is not None:
            waits[job_type].append(_seconds(decided, provided))
    return {
        job_type: (counts, percentile(waits[job_type], 0.5), percentile(waits[job_type], 0.95))
        for job_type, counts in kinds.items()
    }


def review_panel(stats):
    table = []
    for job_type in sorted(stats):
        counts, p50, p95 = stats[job_type]
        final = sum(counts[kind] for kind in FINAL_DECISIONS)
        approved = counts[Decision.Kind.APPROVE] + counts[Decision.Kind.EDIT_APPROVE]
        table.append(
            [
                job_type,
                final,
                _ratio(approved, final),
                _ratio(counts[Decision.Kind.REJECT], final),
                _ratio(counts[Decision.Kind.EDIT_APPROVE], final),
                counts[Decision.Kind.SEND_BACK],
                counts[Decision.Kind.ESCALATE],
                _round(p50),
                _round(p95),
            ]
        )
    return Panel(
        "review",
        "Review decisions",
        [
            "Job type",
            "Decided",
            "Approval rate",
            "Rejection rate",
            "Edit rate",
            "Sent back",
            "Escalated",
            "Time to decision p50 (s)",
            "Time to decision p95 (s)",
        ],
        table,
        chart=[(row[0], row[2] or 0) for row in table],
        chart_unit="approval rate",
        note="Rates are shares of final decisions (approved, approved with edits, rejected); "
        "time to decision runs from the model's answer to the decision.",
    )


def sampling_panel(census):
    tally = _tally(census, ("job_type", "review_state"), "sampled")
    table = [[job_type, state, jobs] for (job_type, state), jobs in tally.items()]
    return Panel(
        "sampling",
        "Sampled review outcomes",
        ["Job type", "Review state", "Jobs"],
        table,
        chart=[(f"{row[0]} · {row[1]}", row[2]) for row in table],
        chart_unit="jobs",
        note="Low-risk writes: not_sampled went out under the policy gate alone; the others "
        "were sampled for review (pending, approved, rejected…).",
    )


def tools_panel(workspace_ids, since, now):
    """Tool runs: the calls the model asked for in the window, by tool, with what became of
    them, how many wait for approval now, and how long approvals took (asked → run)."""
    rows = (
        ToolCall.objects.filter(job__workspace_id__in=workspace_ids, created_at__gte=since)
        .order_by()
        .values_list("name", "state", "created_at", "started_at", "decided_by_id")
    )
    states = defaultdict(lambda: defaultdict(int))
    waits = defaultdict(list)
    for name, state, asked, started, decided_by in rows:
        states[name][state] += 1
        if decided_by and started:  # approved by a person, then run
            waits[name].append(_seconds(started, asked))
    table = [
        [
            name,
            sum(counts.values()),
            counts[ToolCall.State.SUCCEEDED],
            counts[ToolCall.State.FAILED],
            counts[ToolCall.State.REJECTED],
            counts[ToolCall.State.TIMED_OUT],
            counts[ToolCall.State.AWAITING_APPROVAL],
            _round(percentile(waits[name], 0.95)),
        ]
        for name, counts in sorted(states.items())
    ]
    return Panel(
        "tools",
        "Tool calls",
        [
            "Tool",
            "Calls",
            "Done",
            "Failed",
            "Rejected",
            "Timed out",
            "Waiting for approval",
            "Approval wait p95 (s)",
        ],
        table,
        chart=[(row[0], row[1]) for row in table],
        chart_unit="calls",
        note="Calls the model asked for in tool runs. Failed calls went back to the model as "
        "errors; approval wait runs from the model's request to the approved call's start.",
    )


PANELS = ("queue", "poll", "provider", "latency", "throughput", "failures", "cost", "review")
PANELS += ("sampling", "tools")


class Reads:
    """The reads the panels share, each made at most once: build any subset of the panels
    (the page builds all, a CSV export one) and each read runs only if a panel needs it.

    ``in_database`` (default: on PostgreSQL) has the database compute the percentiles and
    buckets (``ops.aggregates``); otherwise they are computed here from the rows."""

    def __init__(self, workspace_ids, *, since, now, in_database=None):
        self.workspace_ids, self.since, self.now = workspace_ids, since, now
        self.in_database = connection.vendor == "postgresql" if in_database is None else in_database
        self.hourly = is_hourly(since, now)

    @cached_property
    def census(self):
        return job_census(
            self.workspace_ids, since=self.since, now=self.now, with_due=not self.in_database
        )

    @cached_property
    def completed(self):
        return completed_jobs(self.workspace_ids, self.since)

    @cached_property
    def window(self):
        """Latency, throughput and poll slip computed by the database in one query."""
        return aggregates.window_stats(
            self.workspace_ids,
            since=self.since,
            now=self.now,
            hourly=self.hourly,
            reviewed_states=REVIEWED_STATES,
        )

    @property
    def latency(self):
        return self.window["latency"] if self.in_database else latency_stats(self.completed)

    @property
    def throughput(self):
        if self.in_database:
            return self.window["throughput"]
        return throughput_stats(self.completed, self.hourly)

    @property
    def poll(self):
        return self.window["poll"] if self.in_database else poll_stats(self.census, self.now)

    @cached_property
    def review(self):
        if self.in_database:
            return aggregates.review_stats(self.workspace_ids, self.since, FINAL_DECISIONS)
        return review_stats(self.workspace_ids, self.since)


def build_panel(key, reads):
    ids, since, now = reads.workspace_ids, reads.since, reads.now
    builders = {
        "queue": lambda: queue_panel(reads.census),
        "poll": lambda: poll_panel(reads.poll),
        "provider": lambda: provider_panel(now),
        "latency": lambda: latency_panel(reads.latency),
        "throughput": lambda: throughput_panel(reads.throughput, since, now),
        "failures": lambda: failures_panel(reads.census),
        "cost": lambda: cost_panel(ids, since),
        "review": lambda: review_panel(reads.review),
        "sampling": lambda: sampling_panel(reads.census),
        "tools": lambda: tools_panel(ids, since, now),
    }
    return builders[key]()


def dispatch_pauses(workspace_ids, census):
    """``{workspace_id: DispatchPause}``, each with its workspace's running jobs as
    ``in_flight`` (from the census)."""
    running = _tally(
        [row for row in census if row["status"] == Status.RUNNING], ("workspace_id",), "open"
    )
    pauses = {
        pause.workspace_id: pause
        for pause in DispatchPause.objects.filter(workspace_id__in=workspace_ids).select_related(
            "paused_by"
        )
    }
    for workspace_id, pause in pauses.items():
        pause.in_flight = running.get((workspace_id,), 0)
    return pauses


def recent_actions(workspace_ids, limit=10):
    return list(
        OpsAction.objects.filter(workspace_id__in=workspace_ids).select_related(
            "actor", "workspace"
        )[:limit]
    )


def failed_jobs(workspace_ids, *, kind, since):
    """The failure list a panel row links to: unarchived failed jobs of ``kind``."""
    return (
        Job.objects.filter(
            workspace_id__in=workspace_ids,
            status=Status.FAILED,
            failure_kind="" if kind == "unknown" else kind,
            is_archived=False,
            finished_at__gte=since,
        )
        .select_related("workspace")
        .order_by("-finished_at")
    )
