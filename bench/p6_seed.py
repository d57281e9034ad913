"""P6's population: a PostgreSQL database holding ``jobs`` jobs with everything the busy pages
read, written with COPY (100k jobs and their ~0.6M related rows take well under two minutes).

Shape, at any size (figures for 100,000 jobs):
- five workspaces; "Acme Support" holds 70 % of the jobs and ~10,000 drafts waiting for review,
  the other four share the rest;
- 20 submitters in Acme (``p6-submitter`` submits 15 % of Acme's jobs: ~10,500), 5 in each other
  workspace; four reviewers in Acme (``p6-reviewer`` among them); ``p6-admin`` administers all
  five workspaces;
- statuses: completed > needs review > failed > running > queued > canceled > expired, over
  the four demo job types and their lanes (a few summaries on the batch lane), three models
  and three priorities; finished jobs spread over the last 30 days, drafts over the last 3 days,
  active jobs over the last half hour;
- one to three attempts per started job, with tokens and cost; a text artifact for every job
  that produced one (and a reviewer's edit for some approvals); 3-5 events per job; a decision
  for every reviewed job; live claims on 4 % of the waiting drafts and released claims on
  decided ones; notifications for the submitter and the reviewer (most read); a paused
  workspace, ops actions, pump heartbeats and provider call counts.

Every row is derived from ``random.Random(seed)``, so the same arguments give the same data.
"""

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone
from psycopg.types.json import Jsonb

SEED_MARK = "p6-seed"  # a workspace slug whose name records what was seeded
TYPES = {  # job type: (authority class, lane)
    "summarize_document": ("read_only", "background"),
    "draft_support_reply": ("draft", "stream"),
    "tag_ticket": ("low_risk_write", "sync"),
    "issue_refund": ("external_effect", "background"),
}
STATUS_WEIGHTS = {
    "big": {
        "completed": 55,
        "needs_review": 14.3,
        "failed": 10,
        "canceled": 5,
        "expired": 2.7,
        "queued": 6,
        "running": 7,
    },
    "other": {
        "completed": 65,
        "needs_review": 5,
        "failed": 12,
        "canceled": 6,
        "expired": 3,
        "queued": 4,
        "running": 5,
    },
}
TYPE_WEIGHTS = {
    "any": {
        "summarize_document": 45,
        "draft_support_reply": 25,
        "tag_ticket": 20,
        "issue_refund": 10,
    },
    "review": {
        "draft_support_reply": 60,
        "issue_refund": 20,
        "tag_ticket": 15,
        "summarize_document": 5,
    },
}
FAILURES = {"provider": 40, "timeout": 20, "tool": 10, "input": 10, "policy": 5, "review": 15}
MODELS = {"gpt-5-mini": 70, "gpt-5": 20, "gpt-4.1-mini": 10}
PRICES = {  # per token: input, output
    "gpt-5-mini": (Decimal("0.00000025"), Decimal("0.000002")),
    "gpt-5": (Decimal("0.00000125"), Decimal("0.00001")),
    "gpt-4.1-mini": (Decimal("0.0000004"), Decimal("0.0000016")),
}
WORKSPACES = [
    ("Acme Support", "p6-acme", 70),
    ("Globex", "p6-globex", 7.5),
    ("Initech", "p6-initech", 7.5),
    ("Umbrella", "p6-umbrella", 7.5),
    ("Hooli", "p6-hooli", 7.5),
]
APP_TABLES = (
    "auth_user, accounts_workspace, jobs_job, jobs_pumpslot, jobs_providercallwindow, "
    "jobs_circuitstate, review_reviewpolicy, django_session"
)


def pick(rng, weights):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def seeded_as(jobs, seed):
    return f"{jobs} jobs, seed {seed}"


def already_seeded(jobs, seed):
    from accounts.models import Workspace

    mark = Workspace.objects.filter(slug=SEED_MARK).values_list("name", flat=True).first()
    return mark == seeded_as(jobs, seed)


def wipe():
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {APP_TABLES} RESTART IDENTITY CASCADE")


class Rows:
    """Rows per model, written with one COPY each; ``add`` fills in every column's default."""

    def __init__(self):
        self.tables = {}
        self.next_id = {}

    def new_id(self, model):
        self.next_id[model] = self.next_id.get(model, 0) + 1
        return self.next_id[model]

    def add(self, model, /, **values):
        self.tables.setdefault(model, []).append(values)
        return values

    def copy(self):
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor, for COPY
            for model, rows in self.tables.items():
                fields = model._meta.concrete_fields
                names = ", ".join(f'"{f.column}"' for f in fields)
                with raw.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row([_value(f, row) for f in fields])
            for model in self.next_id:
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
                )
            # What autovacuum leaves behind on a live table: statistics and a visibility map.
            cursor.execute("VACUUM ANALYZE")


def _value(field, row):
    value = row[field.attname] if field.attname in row else field.get_default()
    if field.get_internal_type() == "JSONField" and value is not None:
        return Jsonb(value)
    return value


def seed(jobs, seed=1):
    """Empty the database's app tables and write the population; returns row counts."""
    from django.contrib.auth import get_user_model

    from accounts.models import Membership, Role, Workspace
    from jobs.models import (
        CircuitState,
        DispatchPause,
        ProviderCallWindow,
        PumpSlot,
    )
    from ops.models import OpsAction
    from review.models import CLAIM_LEASE, ReviewPolicy

    User = get_user_model()
    rng = random.Random(seed)
    now = timezone.now()
    wipe()

    workspaces = Workspace.objects.bulk_create(
        [Workspace(name=name, slug=slug) for name, slug, _ in WORKSPACES]
        + [Workspace(name=seeded_as(jobs, seed), slug=SEED_MARK)]
    )[: len(WORKSPACES)]
    big = workspaces[0]

    def users(names):
        return User.objects.bulk_create(
            [User(username=n, email=f"{n}@example.test", password="!") for n in names]
        )

    submitter, reviewer, admin = users(["p6-submitter", "p6-reviewer", "p6-admin"])
    others = users([f"p6-reviewer-{i}" for i in range(1, 4)])
    members = {big.pk: [submitter, *users([f"acme-{i}" for i in range(1, 20)])]}
    for ws in workspaces[1:]:
        members[ws.pk] = users([f"{ws.slug}-{i}" for i in range(5)])
    memberships = [Membership(user=admin, workspace=ws, role=Role.ADMIN) for ws in workspaces]
    memberships += [
        Membership(user=u, workspace=big, role=Role.REVIEWER) for u in [reviewer, *others]
    ]
    memberships += [
        Membership(user=u, workspace_id=ws, role=Role.MEMBER)
        for ws, us in members.items()
        for u in us
    ]
    Membership.objects.bulk_create(memberships)
    reviewers = [reviewer, *others]

    rows = Rows()
    for number, name in ((1, "p6-pump-a"), (2, "p6-pump-b")):
        rows.add(
            PumpSlot,
            slot=number,
            owner=name,
            heartbeat_at=now - timedelta(seconds=rng.uniform(0, 5)),
        )
    for i in range(6):
        rows.add(
            ProviderCallWindow,
            id=rows.new_id(ProviderCallWindow),
            bucket=(now - timedelta(seconds=10 * i)).replace(microsecond=0),
            ok=rng.randint(20, 60),
            failed=rng.randint(0, 3),
            rate_limited=rng.randint(0, 2),
        )
    rows.add(
        CircuitState, id=rows.new_id(CircuitState), state="closed", open_seconds=30, changed_at=now
    )
    ReviewPolicy.objects.create(job_type="draft_support_reply", review_sla=timedelta(hours=1))
    DispatchPause.objects.create(
        workspace=workspaces[4], mode="drain", reason="Quota review", paused_by=admin
    )
    for i in range(15):
        OpsAction.objects.create(
            workspace=workspaces[i % len(workspaces)],
            actor=admin,
            kind=pick(rng, {"pause": 1, "resume": 1, "retry_failures": 2}),
            message="Seeded operator action",
        )

    shares = {ws.pk: share for ws, (_, _, share) in zip(workspaces, WORKSPACES, strict=True)}
    for _ in range(jobs):
        ws = rng.choices(list(shares), weights=list(shares.values()))[0]
        if ws == big.pk:
            who = submitter if rng.random() < 0.15 else rng.choice(members[ws][1:])
        else:
            who = rng.choice(members[ws])
        _one_job(rows, rng, now, ws, who, reviewers, submitter, reviewer, ws == big.pk, CLAIM_LEASE)

    rows.copy()
    return {model.__name__: len(r) for model, r in rows.tables.items()}


def _one_job(rows, rng, now, ws, who, reviewers, submitter, reviewer, in_big, lease):
    from jobs.models import Artifact, Attempt, Job, JobEvent
    from notifications.models import Notification
    from review.models import Decision, ReviewClaim

    status = pick(rng, STATUS_WEIGHTS["big" if in_big else "other"])
    job_type = pick(rng, TYPE_WEIGHTS["review" if status == "needs_review" else "any"])
    authority, lane = TYPES[job_type]
    if job_type == "summarize_document" and rng.random() < 0.05:
        lane = "batch"
    model = pick(rng, MODELS)
    job_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    sensitive = job_type == "summarize_document" and status == "needs_review"

    # Times, from the end backwards so nothing lies in the future.
    if status == "queued":
        created = now - timedelta(seconds=rng.uniform(0, 600))
    elif status == "running":
        created = now - timedelta(seconds=rng.uniform(5, 1800))
    elif status == "needs_review":
        created = now - timedelta(seconds=rng.uniform(60, 3 * 86400))
    else:
        created = now - timedelta(seconds=rng.uniform(600, 30 * 86400))
    started = created + timedelta(seconds=rng.uniform(0.2, 20)) if status != "queued" else None
    provided = (
        started + timedelta(seconds=rng.uniform(3, 240))
        if started and status != "running"
        else None
    )
    finished = reviewed = completed = None
    review_state, failure_kind = "", ""
    if status == "needs_review":
        review_state = "escalated" if rng.random() < 0.05 else "pending"
    elif status in ("completed", "failed", "canceled", "expired"):
        finished = (provided or started or created) + timedelta(seconds=rng.uniform(0.1, 5))
        reviewed_kind = authority in ("draft", "external_effect") or (
            authority == "low_risk_write" and rng.random() < 0.2
        )
        if status == "completed":
            if reviewed_kind:
                reviewed = provided + timedelta(seconds=rng.uniform(60, 7200))
                finished = reviewed + timedelta(seconds=rng.uniform(0.1, 3))
                review_state = "approved"
            else:
                review_state = "not_sampled" if authority == "low_risk_write" else "not_required"
            completed = finished
        if status == "failed":
            failure_kind = pick(rng, FAILURES)
            if failure_kind == "review" and reviewed_kind:
                reviewed = provided + timedelta(seconds=rng.uniform(60, 7200))
                finished = reviewed
                review_state = "rejected"
            elif failure_kind == "review":
                failure_kind = "provider"
        finished = min(finished, now)
    attempts = 0 if status == "queued" else rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
    terminal_old = finished and finished < now - timedelta(days=7)

    job = rows.add(
        Job,
        id=job_id,
        workspace_id=ws,
        submitter_id=who.pk,
        job_type=job_type,
        authority_class=authority,
        lane=lane,
        model=model,
        priority=rng.choices((10, 20, 30), weights=(15, 75, 10))[0],
        input={"title": f"Document {job_id.hex[:6]}", "document": "Seeded text."},
        input_summary=f"{job_type.replace('_', ' ').capitalize()} #{job_id.hex[:6]}",
        is_sensitive=sensitive,
        status=status,
        review_state=review_state,
        expires_at=created + timedelta(hours=2),
        attempt_count=attempts,
        attempt_limit=3,
        next_poll_at=(
            now - timedelta(seconds=rng.uniform(0, 2))
            if status == "queued"
            else now + timedelta(seconds=rng.uniform(-3, 30))
            if status == "running"
            else None
        ),
        lease_owner="",
        created_at=created,
        updated_at=finished or provided or started or created,
        started_at=started,
        provider_finished_at=provided,
        reviewed_at=reviewed,
        completed_at=completed,
        finished_at=finished,
        failure_kind=failure_kind,
        failure_reason="Seeded failure." if failure_kind else "",
        failure_retryable=failure_kind in ("provider", "timeout"),
        needs_human=failure_kind in ("tool", "policy"),
        is_archived=bool(terminal_old and rng.random() < 0.1),
        cost=Decimal(0),
    )

    def event(kind, at, actor=None, to_status=""):
        return rows.add(
            JobEvent,
            id=rows.new_id(JobEvent),
            job_id=job_id,
            kind=kind,
            actor_id=actor.pk if actor else None,
            actor_label=actor.username if actor else "system:worker",
            to_status=to_status,
            created_at=at,
        )

    event("submitted", created, who, "queued")
    last_attempt = None
    for number in range(1, attempts + 1):
        last = number == attempts
        state = (
            {
                "running": "in_flight",
                "needs_review": "succeeded",
                "completed": "succeeded",
                "failed": "failed",
                "canceled": "canceled",
                "expired": "abandoned",
            }[status]
            if last
            else "failed"
        )
        tokens_in, tokens_out = rng.randint(300, 6000), rng.randint(50, 800)
        price_in, price_out = PRICES[model]
        cost = Decimal(0) if state == "in_flight" else tokens_in * price_in + tokens_out * price_out
        job["cost"] += cost
        at = started + timedelta(seconds=number - 1)
        last_attempt = rows.add(
            Attempt,
            id=rows.new_id(Attempt),
            job_id=job_id,
            number=number,
            state=state,
            provider_response_id=f"resp_{job_id.hex}{number}",
            provider_status="in_progress" if state == "in_flight" else "completed",
            model=model,
            input_tokens=0 if state == "in_flight" else tokens_in,
            output_tokens=0 if state == "in_flight" else tokens_out,
            cost=cost,
            price_version="2026-11",
            polls=rng.randint(1, 12),
            started_at=at,
            finished_at=None if state == "in_flight" else (provided or finished or at),
            error_kind="provider" if state == "failed" else "",
        )
        event("attempt_started", at, to_status="running")
    if status in ("queued", "running"):
        return
    final = event(status, finished or provided, to_status=status)

    if status in ("completed", "needs_review"):
        artifact = rows.add(
            Artifact,
            id=rows.new_id(Artifact),
            job_id=job_id,
            attempt_id=last_attempt["id"],
            kind="text",
            version=1,
            text="Seeded model output. " * 8,
            created_at=provided,
        )
    decider = rng.choice(reviewers)
    if review_state in ("approved", "rejected"):
        edited = review_state == "approved" and rng.random() < 0.2
        if edited:
            artifact = rows.add(
                Artifact,
                id=rows.new_id(Artifact),
                job_id=job_id,
                kind="text",
                version=2,
                text="Seeded reviewer edit. " * 8,
                created_by_id=decider.pk,
                created_at=reviewed,
            )
        rows.add(
            Decision,
            id=rows.new_id(Decision),
            job_id=job_id,
            reviewer_id=decider.pk,
            kind=("edit_approve" if edited else "approve")
            if review_state == "approved"
            else "reject",
            artifact_id=artifact["id"] if review_state == "approved" else None,
            artifact_version=artifact["version"] if review_state == "approved" else None,
            created_at=reviewed,
        )
        event("approved" if review_state == "approved" else "rejected", reviewed, decider)
        if rng.random() < 0.5:
            rows.add(
                ReviewClaim,
                id=rows.new_id(ReviewClaim),
                job_id=job_id,
                reviewer_id=decider.pk,
                claimed_at=reviewed - timedelta(minutes=5),
                expires_at=reviewed + timedelta(minutes=10),
                released_at=reviewed,
                end="decided",
            )
    if review_state == "escalated":
        rows.add(
            Decision,
            id=rows.new_id(Decision),
            job_id=job_id,
            reviewer_id=decider.pk,
            kind="escalate",
            created_at=provided + timedelta(minutes=rng.uniform(5, 60)),
        )
    if status == "needs_review" and rng.random() < 0.04:
        claimed = now - timedelta(minutes=rng.uniform(0, 10))
        rows.add(
            ReviewClaim,
            id=rows.new_id(ReviewClaim),
            job_id=job_id,
            reviewer_id=(reviewer if rng.random() < 0.5 else decider).pk,
            claimed_at=claimed,
            expires_at=claimed + lease,
        )
    readers = [who] if who.pk == submitter.pk else []
    if status == "needs_review" and rng.random() < 0.2:
        readers.append(reviewer)
    for user in readers:
        rows.add(
            Notification,
            id=rows.new_id(Notification),
            user_id=user.pk,
            job_id=job_id,
            event_id=final["id"],
            topic=status,
            title=f"{job['input_summary']}: {status.replace('_', ' ')}",
            created_at=final["created_at"],
            read_at=None if rng.random() < 0.05 else final["created_at"] + timedelta(minutes=5),
        )
