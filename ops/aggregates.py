"""The ops panels' statistics computed by PostgreSQL, so a panel's cost in Python is one row
per group (job type, phase, hour) instead of one per job: percentiles with ``percentile_cont``,
hour and day buckets with ``date_trunc``. ``ops.selectors`` holds the same statistics computed
in Python from the rows (SQLite has no ``percentile_cont``); both give the same numbers, as
``percentile`` interpolates the way ``percentile_cont`` does and both subtract the same
microsecond timestamps (``tests/ops/test_dashboard.py`` runs both on PostgreSQL and compares).
"""

from collections import Counter
from datetime import UTC

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q

from jobs.models import ACTIVE, Attempt, Job, Status
from review.models import Decision


class Seconds(Func):
    """``later - earlier`` in seconds as a float (NULL if either is NULL)."""

    template = "EXTRACT(EPOCH FROM (%(expressions)s))::float8"
    arg_joiner = " - "
    output_field = FloatField()

    def __init__(self, later, earlier):
        super().__init__(F(later), F(earlier))


class PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``: the
    linear-interpolated percentile of the group's non-NULL values, NULL for none."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)r) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _epoch(later, earlier):
    return f"EXTRACT(EPOCH FROM ({later} - {earlier}))::float8"


# The phases of a completed job, in the order the columns below give them (``ops.selectors``
# names them too); the database sorts each phase's values once for both percentiles. Provider
# time runs from the start of the attempt that answered (the job's last), so a retried or
# re-queued job does not count its whole life as the provider's.
PHASES = ("queue wait", "provider time", "review wait", "total")

# One read for the three panels that need percentiles or buckets over many rows (latency,
# throughput, poll slip), so the page keeps its query count: each branch is tagged by ``part``.
_REVIEW_WAIT = (
    "CASE WHEN j.reviewed_at IS NOT NULL OR j.review_state = ANY(%(reviewed)s) THEN "
    + _epoch("COALESCE(j.reviewed_at, j.completed_at)", "j.provider_finished_at")
    + " END"
)
WINDOW_STATS_SQL = f"""
WITH completed AS NOT MATERIALIZED (
    SELECT j.job_type, j.finished_at,
           {_epoch("j.started_at", "j.created_at")} AS queue_wait,
           {_epoch("j.provider_finished_at", "COALESCE(a.started_at, j.started_at)")}
               AS provider_time,
           {_REVIEW_WAIT} AS review_wait,
           {_epoch("j.finished_at", "j.created_at")} AS total
    FROM {Job._meta.db_table} j
    LEFT JOIN LATERAL (
        SELECT fa.started_at FROM {Attempt._meta.db_table} fa
        WHERE fa.job_id = j.id ORDER BY fa.number DESC LIMIT 1
    ) a ON TRUE
    WHERE j.workspace_id = ANY(%(workspaces)s) AND j.status = %(completed)s
      AND j.finished_at >= %(since)s
)
SELECT 'latency', c.job_type, NULL::timestamp, NULL::float8[],
       count(c.queue_wait), percentile_cont(%(fractions)s) WITHIN GROUP (ORDER BY c.queue_wait),
       count(c.provider_time),
       percentile_cont(%(fractions)s) WITHIN GROUP (ORDER BY c.provider_time),
       count(c.review_wait), percentile_cont(%(fractions)s) WITHIN GROUP (ORDER BY c.review_wait),
       count(c.total), percentile_cont(%(fractions)s) WITHIN GROUP (ORDER BY c.total)
FROM completed c
GROUP BY c.job_type
UNION ALL
SELECT 'throughput', NULL, date_trunc(%(unit)s, c.finished_at AT TIME ZONE 'UTC'), NULL,
       count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM completed c
GROUP BY 3
UNION ALL
SELECT 'poll', NULL, NULL, ARRAY[max(d.slip)],
       count(*), percentile_cont(%(fractions)s) WITHIN GROUP (ORDER BY d.slip),
       NULL, NULL, NULL, NULL, NULL, NULL
FROM (
    SELECT {_epoch("%(now)s::timestamptz", "j.next_poll_at")} AS slip
    FROM {Job._meta.db_table} j
    WHERE j.workspace_id = ANY(%(workspaces)s) AND j.status = ANY(%(active)s)
      AND j.next_poll_at <= %(now)s
) d
"""


def window_stats(workspace_ids, *, since, now, hourly, reviewed_states):
    """``{"latency": {job type: {phase: (jobs, p50, p95)}}, "throughput": {bucket start:
    completed jobs}, "poll": (due jobs, p50, p95, max)}`` in one query (PostgreSQL only)."""
    stats = {"latency": {}, "throughput": {}, "poll": (0, None, None, None)}
    with connection.cursor() as cursor:
        cursor.execute(
            WINDOW_STATS_SQL,
            {
                "workspaces": list(workspace_ids),
                "completed": Status.COMPLETED,
                "since": since,
                "now": now,
                "active": list(ACTIVE),
                "reviewed": list(reviewed_states),
                "unit": "hour" if hourly else "day",
                "fractions": [0.5, 0.95],
            },
        )
        for part, job_type, bucket, top, *phases in cursor.fetchall():
            if part == "latency":
                counts, percentiles = phases[::2], phases[1::2]
                stats["latency"][job_type] = {
                    phase: (count, *pair)
                    for phase, count, pair in zip(PHASES, counts, percentiles, strict=True)
                    if count
                }
            elif part == "throughput":
                stats["throughput"][bucket.replace(tzinfo=UTC)] = phases[0]
            elif part == "poll":
                count, percentiles = phases[:2]
                stats["poll"] = (count, *(percentiles or (None, None)), top[0])
    return stats


def review_stats(workspace_ids, since, final_kinds):
    """``{job type: (Counter of decision kinds, p50, p95 of time to decision)}`` in one query
    (PostgreSQL only); time to decision counts final decisions of answered jobs."""
    waited = Q(kind__in=final_kinds, job__provider_finished_at__isnull=False)
    wait = Seconds("created_at", "job__provider_finished_at")
    rows = (
        Decision.objects.filter(job__workspace_id__in=workspace_ids, created_at__gte=since)
        .values("job__job_type")
        .annotate(
            p50=PercentileCont(wait, 0.5, filter=waited),
            p95=PercentileCont(wait, 0.95, filter=waited),
            **{f"n_{kind}": Count("id", filter=Q(kind=kind)) for kind in Decision.Kind.values},
        )
        .order_by()
    )
    return {
        row["job__job_type"]: (
            Counter({kind: row[f"n_{kind}"] for kind in Decision.Kind.values}),
            row["p50"],
            row["p95"],
        )
        for row in rows
    }
