"""Submitting a job: validation, idempotency keys, the record before any model call."""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import role_in

from ..errors import (
    IdempotencyKeyReused,
    InvalidJobInput,
    LaneNotAllowed,
    NotAMember,
)
from ..job_types import get_job_type
from ..job_types.registry import RETAINING_LANES
from ..models import (
    Job,
    Priority,
)
from .base import dispatch_on_commit, record_event

# --- submission ----------------------------------------------------------------------------


def _fingerprint(submitter, job_type, cleaned, priority):
    """What makes two submissions "the same request": a colleague reusing a key is not."""
    body = json.dumps(
        {
            "submitter": submitter.pk,
            "job_type": job_type,
            "input": cleaned,
            "priority": int(priority),
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _replay(existing, fingerprint):
    if existing.idempotency_fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This idempotency key was already used in this workspace for a different request. "
            "Use a new key for a new job."
        )
    existing.replayed = True
    return existing


def submit_job(
    *,
    workspace,
    submitter,
    job_type,
    input,
    priority=Priority.NORMAL,
    idempotency_key=None,
    run_by=None,
):
    """Validate and record a new job, then enqueue its dispatch once the record is committed.

    ``run_by`` names the request that runs a sync-lane job itself: the job is written already
    leased to it, so no worker can start it first, for the request's whole budget
    (``SYNC_LANE_TIMEOUT``) and a lease beyond; if the request dies, the lease lapses and a
    worker starts the job then. Other lanes ignore it.

    Idempotent by ``idempotency_key`` within the workspace: the same key with the same request
    returns the original job (``job.replayed`` is True); with a different request it raises
    ``IdempotencyKeyReused``. Concurrent duplicates create exactly one job.
    """
    spec = get_job_type(job_type)
    if role_in(submitter, workspace.id) is None:
        raise NotAMember("You are not a member of this workspace.")
    if workspace.zero_data_retention and spec.lane in RETAINING_LANES:
        raise LaneNotAllowed(
            f"{workspace.name} requires zero data retention, and {spec.title} runs in the "
            f"{spec.lane} lane, which keeps data at the provider for about ten minutes."
        )
    cleaned, errors = spec.clean_input(input)
    if errors:
        raise InvalidJobInput(errors)
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise InvalidJobInput({"idempotency_key": ["Use a key of 1 to 255 characters."]})
    priority = Priority(int(priority))
    fingerprint = _fingerprint(submitter, spec.name, cleaned, priority)
    if idempotency_key:
        existing = Job.objects.filter(workspace=workspace, idempotency_key=idempotency_key).first()
        if existing:
            return _replay(existing, fingerprint)

    now = timezone.now()
    held = {}
    if run_by and spec.lane == "sync":
        hold = settings.SYNC_LANE_TIMEOUT + settings.POLL_LEASE_SECONDS
        held = {"lease_owner": run_by, "lease_expires_at": now + timedelta(seconds=hold)}
    try:
        with transaction.atomic():
            job = Job.objects.create(
                workspace=workspace,
                submitter=submitter,
                job_type=spec.name,
                authority_class=spec.authority_class,
                lane=spec.lane,
                model=spec.model,
                priority=priority,
                input=cleaned,
                input_summary=spec.summarize(cleaned),
                is_sensitive=spec.is_sensitive(cleaned),
                idempotency_key=idempotency_key or None,
                idempotency_fingerprint=fingerprint,
                expires_at=now + spec.deadline,
                attempt_limit=spec.attempt_limit,
                next_poll_at=now,
                **held,
            )
            record_event(
                job,
                "submitted",
                actor=submitter,
                to_status=job.status,
                message=f"{spec.title} submitted.",
            )
            if spec.lane != "sync":
                dispatch_on_commit(job)
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = Job.objects.get(workspace=workspace, idempotency_key=idempotency_key)
        return _replay(existing, fingerprint)
    job.replayed = False
    return job
