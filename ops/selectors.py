"""The ops dashboard's reads. Each panel is one aggregate query (or one ``values_list`` whose
percentiles are computed here), scoped to the admin's workspaces, so the page costs the same
number of queries at 100 jobs as at 100k. Durations are seconds; money is the price table's
currency.

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

from django.db.models import Count, F, Q, Sum

from accounts.models import Role, Workspace
from accounts.selectors import workspace_ids_for
from jobs import circuit
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
)
from review.models import Decision

from .models import OpsAction

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
WASTED = (Status.FAILED, Status.CANCELED, Status.EXPIRED)
PHASES = ("queue wait", "provider time", "review wait", "total")
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
    note: str = ""


def admin_workspaces(user):
    """The workspaces where ``user`` is an admin: the ops dashboard's whole scope."""
    return Workspace.objects.filter(id__in=workspace_ids_for(user, roles=[Role.ADMIN])).order_by(
        "name"
    )


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


def queue_panel(workspace_ids):
    rows = (
        Job.objects.filter(workspace_id__in=workspace_ids, status__in=OPEN)
        .values("status", "lane")
        .annotate(jobs=Count("id"))
        .order_by("status", "lane")
    )
    table = [[row["status"], row["lane"], row["jobs"]] for row in rows]
    return Panel(
        "queue",
        "Queue depth and in-flight jobs",
        ["Status", "Lane", "Jobs"],
        table,
        chart=[(f"{status} · {lane}", jobs) for status, lane, jobs in table],
    )


def poll_panel(workspace_ids, now):
    overdue = list(
        Job.objects.filter(
            workspace_id__in=workspace_ids, status__in=ACTIVE, next_poll_at__lte=now
        ).values_list("next_poll_at", flat=True)
    )
    slips = [_seconds(now, due) for due in overdue]
    return Panel(
        "poll",
        "Jobs due for a look, and poll slip",
        ["Due now", "Slip p50 (s)", "Slip p95 (s)", "Slip max (s)"],
        [
            [
                len(slips),
                _round(percentile(slips, 0.5)),
                _round(percentile(slips, 0.95)),
                _round(max(slips) if slips else None),
            ]
        ],
        note="Slip: how long past its next poll time an active job has waited.",
    )


def provider_panel(now):
    """Provider health is shared by every workspace: these numbers are not workspace-scoped."""
    calls = circuit.recent(now)
    total = calls["ok"] + calls["failed"]
    beats = list(PumpSlot.objects.order_by("slot").values_list("slot", "heartbeat_at"))
    rows = [
        ["Calls in the last minute", total],
        ["Errors", calls["failed"]],
        ["Error rate", _ratio(calls["failed"], total)],
        ["429 responses", calls["rate_limited"]],
        ["Circuit breaker", circuit.state(now)],
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


def latency_panel(workspace_ids, since):
    rows = Job.objects.filter(
        workspace_id__in=workspace_ids, status=Status.COMPLETED, finished_at__gte=since
    ).values_list(
        "job_type",
        "created_at",
        "started_at",
        "provider_finished_at",
        "reviewed_at",
        "completed_at",
        "finished_at",
        "review_state",
    )
    phases = defaultdict(lambda: {phase: [] for phase in PHASES})
    for job_type, created, started, provided, reviewed, completed, finished, state in rows:
        values = phases[job_type]
        for phase, seconds in (
            ("queue wait", _seconds(started, created)),
            ("provider time", _seconds(provided, started)),
            ("total", _seconds(finished, created)),
        ):
            if seconds is not None:
                values[phase].append(seconds)
        if reviewed or state in REVIEWED_STATES:
            seconds = _seconds(reviewed or completed, provided)
            if seconds is not None:
                values["review wait"].append(seconds)
    table = []
    for job_type in sorted(phases):
        for phase in PHASES:
            values = phases[job_type][phase]
            if values:
                table.append(
                    [
                        job_type,
                        phase,
                        len(values),
                        _round(percentile(values, 0.5)),
                        _round(percentile(values, 0.95)),
                    ]
                )
    return Panel(
        "latency",
        "Latency by phase (completed jobs)",
        ["Job type", "Phase", "Jobs", "p50 (s)", "p95 (s)"],
        table,
        chart=[(f"{row[0]} · {row[1]} p95", row[4]) for row in table],
    )


def _clock_floor(moment, hourly):
    """The start of the UTC clock hour (or day) holding ``moment``."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment if hourly else moment.replace(hour=0)


def throughput_panel(workspace_ids, since, now):
    """Completed jobs per clock hour (24 h window) or UTC day (longer windows). Buckets are
    whole hours or days, as their labels say; the first one starts before ``since`` and counts
    only the part of it inside the window."""
    finished = Job.objects.filter(
        workspace_id__in=workspace_ids, status=Status.COMPLETED, finished_at__gte=since
    ).values_list("finished_at", flat=True)
    hourly = (now - since) <= timedelta(hours=24)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    start = _clock_floor(since, hourly)
    buckets = math.ceil((now - start) / step)
    counts = [0] * buckets
    for moment in finished:
        index = min(int((moment - start) / step), buckets - 1)
        counts[index] += 1
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
    )


def failures_panel(workspace_ids, since):
    rows = (
        Job.objects.filter(
            workspace_id__in=workspace_ids,
            status=Status.FAILED,
            is_archived=False,
            finished_at__gte=since,
        )
        .values("failure_kind")
        .annotate(
            jobs=Count("id"),
            retryable=Count(
                "id", filter=Q(failure_retryable=True, attempt_count__lt=F("attempt_limit"))
            ),
            needs_human=Count("id", filter=Q(needs_human=True)),
        )
        .order_by("-jobs", "failure_kind")
    )
    table = [
        [row["failure_kind"] or "unknown", row["jobs"], row["retryable"], row["needs_human"]]
        for row in rows
    ]
    return Panel(
        "failures",
        "Failures by kind",
        ["Kind", "Failed jobs", "Retryable", "Needs a person"],
        table,
        chart=[(row[0], row[1]) for row in table],
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
        note="Spend counts every attempt of the jobs finished in the window, failed and "
        "retried ones included; wasted is the part spent on jobs that did not complete.",
    )


def _money(value):
    return None if value is None else Decimal(value).quantize(Decimal("0.000001"))


def review_panel(workspace_ids, since):
    decisions = Decision.objects.filter(
        job__workspace_id__in=workspace_ids, created_at__gte=since
    ).values_list("job__job_type", "kind", "created_at", "job__provider_finished_at")
    kinds = defaultdict(lambda: defaultdict(int))
    waits = defaultdict(list)
    for job_type, kind, decided, provided in decisions:
        kinds[job_type][kind] += 1
        if kind in FINAL_DECISIONS and provided is not None:
            waits[job_type].append(_seconds(decided, provided))
    table = []
    for job_type in sorted(kinds):
        counts = kinds[job_type]
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
                _round(percentile(waits[job_type], 0.5)),
                _round(percentile(waits[job_type], 0.95)),
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
        note="Rates are shares of final decisions (approved, approved with edits, rejected); "
        "time to decision runs from the model's answer to the decision.",
    )


def sampling_panel(workspace_ids, since):
    rows = (
        Job.objects.filter(
            workspace_id__in=workspace_ids,
            authority_class="low_risk_write",
            created_at__gte=since,
        )
        .exclude(review_state=ReviewState.NONE)
        .values("job_type", "review_state")
        .annotate(jobs=Count("id"))
        .order_by("job_type", "review_state")
    )
    table = [[row["job_type"], row["review_state"], row["jobs"]] for row in rows]
    return Panel(
        "sampling",
        "Sampled review outcomes",
        ["Job type", "Review state", "Jobs"],
        table,
        chart=[(f"{row[0]} · {row[1]}", row[2]) for row in table],
        note="Low-risk writes: not_sampled went out under the policy gate alone; the others "
        "were sampled for review (pending, approved, rejected…).",
    )


PANELS = ("queue", "poll", "provider", "latency", "throughput", "failures", "cost", "review")
PANELS += ("sampling",)


def build_panel(key, workspace_ids, *, since, now):
    builders = {
        "queue": lambda: queue_panel(workspace_ids),
        "poll": lambda: poll_panel(workspace_ids, now),
        "provider": lambda: provider_panel(now),
        "latency": lambda: latency_panel(workspace_ids, since),
        "throughput": lambda: throughput_panel(workspace_ids, since, now),
        "failures": lambda: failures_panel(workspace_ids, since),
        "cost": lambda: cost_panel(workspace_ids, since),
        "review": lambda: review_panel(workspace_ids, since),
        "sampling": lambda: sampling_panel(workspace_ids, since),
    }
    return builders[key]()


def dispatch_pauses(workspace_ids):
    """``{workspace_id: DispatchPause}`` plus each paused workspace's in-flight count."""
    pauses = {
        pause.workspace_id: pause
        for pause in DispatchPause.objects.filter(workspace_id__in=workspace_ids)
        .select_related("paused_by")
        .annotate(
            in_flight=Count("workspace__jobs", filter=Q(workspace__jobs__status=Status.RUNNING))
        )
    }
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
