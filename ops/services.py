"""The ops controls. Each one is a transaction that leaves an ``OpsAction`` (and, for the
jobs it touches, their own JobEvents through jobs.services)."""

from django.db import transaction

from jobs.errors import JobError
from jobs.models import DispatchPause, Job, Status
from jobs.services import retry_job

from .models import OpsAction

RETRY_LIMIT = 500  # jobs per click; the page says when more remain


@transaction.atomic
def pause_dispatch(*, workspace, actor, mode=DispatchPause.Mode.PAUSE, reason=""):
    """Hold new background dispatch for ``workspace`` (idempotent: pausing again updates the
    mode). Queued jobs stay queued with a wait reason; in-flight work keeps being polled."""
    pause, _ = DispatchPause.objects.update_or_create(
        workspace=workspace, defaults={"mode": mode, "reason": reason[:200], "paused_by": actor}
    )
    kind = OpsAction.Kind.DRAIN if mode == DispatchPause.Mode.DRAIN else OpsAction.Kind.PAUSE
    verb = "Draining" if kind == OpsAction.Kind.DRAIN else "Paused"
    OpsAction.objects.create(
        workspace=workspace,
        actor=actor,
        kind=kind,
        message=f"{verb} new background dispatch." + (f" {reason}" if reason else ""),
        data={"mode": mode},
    )
    return pause


@transaction.atomic
def resume_dispatch(*, workspace, actor):
    """Let dispatch continue; held jobs start on their next look (within a few seconds).
    Returns False when nothing was paused."""
    deleted, _ = DispatchPause.objects.filter(workspace=workspace).delete()
    if deleted:
        OpsAction.objects.create(
            workspace=workspace,
            actor=actor,
            kind=OpsAction.Kind.RESUME,
            message="Resumed new background dispatch.",
        )
    return bool(deleted)


def retryable_failures(*, workspace, kind, since):
    """Failed, retryable, unarchived jobs of ``kind`` that finished since ``since``."""
    return Job.objects.filter(
        workspace=workspace,
        status=Status.FAILED,
        failure_kind=kind,
        failure_retryable=True,
        is_archived=False,
        finished_at__gte=since,
    ).order_by("finished_at")


def retry_failures(*, workspace, actor, kind, since):
    """Retry each retryable failure of ``kind`` through ``jobs.services.retry_job`` (each in
    its own transaction, each with its ``retried`` event). Returns ``(retried, refusals,
    remaining)``: retried job ids, ``[(job id, message)]`` for refused ones, and how many were
    left for another click. Logs one OpsAction."""
    candidates = list(retryable_failures(workspace=workspace, kind=kind, since=since))
    batch, remaining = candidates[:RETRY_LIMIT], max(len(candidates) - RETRY_LIMIT, 0)
    retried, refusals = [], []
    for job in batch:
        try:
            retry_job(job=job, actor=actor)
        except JobError as error:
            refusals.append((str(job.pk), error.message))
        else:
            retried.append(str(job.pk))
    OpsAction.objects.create(
        workspace=workspace,
        actor=actor,
        kind=OpsAction.Kind.RETRY_FAILURES,
        message=f"Retried {len(retried)} {kind} failures; {len(refusals)} refused.",
        data={"kind": kind, "retried": retried, "refused": refusals, "remaining": remaining},
    )
    return retried, refusals, remaining
