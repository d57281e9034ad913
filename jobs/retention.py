"""Retention: remove old content, keep the audit skeleton.

Each workspace may set how many days finished jobs keep their input and their outputs
(``Workspace.input_retention_days`` / ``output_retention_days``; empty keeps them forever).
``purge_expired_content`` runs daily (a django-q2 schedule) and, for every finished job past
a limit, removes:

- input: ``Job.input`` (emptied), ``Job.input_summary`` and each attempt's ``instructions``
  (they are rendered from the input);
- outputs: every artifact's ``text`` and ``data`` (model drafts, reviewer edits, evidence,
  partial output, stale results), each attempt's raw ``output``, and the streamed text held
  in ``partial_output`` events.

What stays is the audit skeleton: ids, job type, lane, model, statuses, review state, times,
attempt counts, tokens, costs, failure kind and reason, events (kinds, actors, times), review
decisions and the refund ledger (the external effect's own record). Events are append-only;
the streamed text in ``partial_output`` events is the single exception, removed through
``JobEvent.redact_partial_text`` (only this module calls it), which keeps each event row and
its sequence number and marks it ``purged``.

Every purged job gets one ``purged`` event saying what was removed and under which setting.
The purge is idempotent: ``input_purged_at`` / ``output_purged_at`` mark what is already gone.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Workspace

from .models import TERMINAL, Artifact, Attempt, Job, JobEvent
from .services import record_note

ACTOR = "system:retention"
BATCH = 200


def _due_jobs(workspace, now):
    """IDs of the workspace's finished jobs with content past its retention, oldest first."""
    due = Q()
    if workspace.input_retention_days is not None:
        due |= Q(
            input_purged_at__isnull=True,
            finished_at__lt=now - timedelta(days=workspace.input_retention_days),
        )
    if workspace.output_retention_days is not None:
        due |= Q(
            output_purged_at__isnull=True,
            finished_at__lt=now - timedelta(days=workspace.output_retention_days),
        )
    if not due:
        return []
    return list(
        Job.objects.filter(due, workspace=workspace, status__in=TERMINAL)
        .order_by("finished_at")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def purge_job_content(*, job, workspace, now):
    """Purge what is past retention for one finished job; write one ``purged`` event.
    Returns the parts removed (``[]`` when nothing was due: safe to call again)."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.status not in TERMINAL or job.finished_at is None:
        return []
    age = now - job.finished_at
    parts = []
    days = workspace.input_retention_days
    if job.input_purged_at is None and days is not None and age > timedelta(days=days):
        Job.objects.filter(pk=job.pk).update(input={}, input_summary="", input_purged_at=now)
        Attempt.objects.filter(job=job).update(instructions="")
        parts.append("input")
    days = workspace.output_retention_days
    if job.output_purged_at is None and days is not None and age > timedelta(days=days):
        Artifact.objects.filter(job=job).update(text="", data=None)
        Attempt.objects.filter(job=job).update(output=None)
        JobEvent.redact_partial_text([job.pk])
        Job.objects.filter(pk=job.pk).update(output_purged_at=now)
        parts.append("output")
    if parts:
        removed = " and ".join("the input" if p == "input" else "the outputs" for p in parts)
        record_note(
            job,
            "purged",
            actor=ACTOR,
            message=f"Removed {removed} under the workspace's retention settings.",
            data={
                "parts": parts,
                "input_retention_days": workspace.input_retention_days,
                "output_retention_days": workspace.output_retention_days,
            },
        )
    return parts


def purge_expired_content(now=None):
    """The daily purge across all workspaces. Each job is purged in its own transaction, so an
    interrupted run loses nothing and the next run continues. Returns ``{"jobs": n}``."""
    now = now or timezone.now()
    purged = 0
    workspaces = Workspace.objects.filter(
        Q(input_retention_days__isnull=False) | Q(output_retention_days__isnull=False)
    )
    for workspace in workspaces:
        for job_id in _due_jobs(workspace, now):
            if purge_job_content(job=Job(pk=job_id), workspace=workspace, now=now):
                purged += 1
    return {"jobs": purged}
