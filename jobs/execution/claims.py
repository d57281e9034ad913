"""Claiming due jobs with leases, and releasing them."""

import logging
import os
import random
import socket
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import (
    ACTIVE,
    Job,
)

log = logging.getLogger(__name__)


def worker_name(prefix="w"):
    return f"{prefix}:{socket.gethostname()}:{os.getpid()}:{random.randrange(16**6):06x}"


def lease_length():
    return timedelta(seconds=settings.POLL_LEASE_SECONDS)


def _due(now):
    return Q(status__in=ACTIVE, next_poll_at__lte=now) & (
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )


def claim_due(owner, *, limit=None, now=None, job_ids=None, without_input=False):
    """Lease up to ``limit`` due jobs to ``owner``; return them. Safe across processes.
    ``without_input`` leaves each job's input (a whole document, perhaps) unread: a pump turn
    mostly polls, and reads it only for the jobs it starts (``polling.process_claimed``)."""
    now = now or timezone.now()
    until = now + lease_length()
    limit = limit or settings.POLL_BATCH
    with transaction.atomic():
        candidates = Job.objects.filter(_due(now))
        if job_ids is not None:
            candidates = candidates.filter(pk__in=job_ids)
        candidates = candidates.order_by("-priority", "next_poll_at")
        if connection.vendor == "postgresql":
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("pk", flat=True)[:limit])
        if ids:
            Job.objects.filter(pk__in=ids).update(lease_owner=owner, lease_expires_at=until)
    if not ids:
        return []
    claimed = Job.objects.filter(pk__in=ids, lease_owner=owner)
    return list(claimed.defer("input") if without_input else claimed)


def release_job(job, *, next_poll_at=None, wait_reason=None):
    changes = {"lease_owner": "", "lease_expires_at": None}
    if next_poll_at is not None:
        changes["next_poll_at"] = next_poll_at
    if wait_reason is not None:
        changes["wait_reason"] = wait_reason
    Job.objects.filter(pk=job.pk, lease_owner=job.lease_owner).update(**changes)


def release_many(jobs, owner, *, in_seconds):
    """Drop ``owner``'s lease on ``jobs`` and make them due ``in_seconds`` from now, in one
    statement (a job another worker leased since is left alone)."""
    if jobs:
        Job.objects.filter(pk__in=[job.pk for job in jobs], lease_owner=owner).update(
            lease_owner="",
            lease_expires_at=None,
            next_poll_at=timezone.now() + timedelta(seconds=in_seconds),
        )
