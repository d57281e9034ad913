"""The release step: run an approved external effect's action exactly once.

``services.approve_draft`` records the approval, creates the job's ``ReleaseRecord`` and
enqueues ``review.tasks.run_release`` after commit; the task calls ``release_approved`` here.
"""

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import services as job_services
from jobs.job_types import get_job_type
from jobs.models import Job, ReviewState, Status

from .models import ReleaseRecord

log = logging.getLogger(__name__)
RELEASE_ACTOR = "system:release"


def release_approved(*, job_id):
    """Run an approved external effect's action exactly once, then complete the job.

    Takes the job's ``ReleaseRecord`` under a row lock (PostgreSQL; SQLite's IMMEDIATE
    transactions serialise writers), so a duplicated or concurrent delivery waits and then finds
    the record done. The action runs inside that transaction with the idempotency key
    ``release:<job id>``: a local effect (the demo refund ledger) commits together with the
    record; a remote one must honour the key. On success the job completes (event ``released``);
    if the action raises, the job fails with kind ``tool`` and the approved draft stays.
    Returns the record (``None`` when the job was never approved).
    """
    with transaction.atomic():
        record = ReleaseRecord.objects.select_for_update().filter(job_id=job_id).first()
        if record is None:
            log.warning("release requested for job %s, which has no approval", job_id)
            return None
        ReleaseRecord.objects.filter(pk=record.pk).update(deliveries=F("deliveries") + 1)
        if record.is_done:
            return record
        job = Job.objects.get(pk=job_id)
        if job.status != Status.NEEDS_REVIEW or job.review_state != ReviewState.APPROVED:
            return _finish_record(
                record,
                ReleaseRecord.State.ABANDONED,
                error=f"Not run: the job was {job.get_status_display().lower()} first.",
            )
        spec = get_job_type(job.job_type)
        try:
            with transaction.atomic():
                result = spec.action(job=job, idempotency_key=record.idempotency_key)
        except Exception as error:  # any failure of the action is the tool's, not ours
            log.exception("release action of job %s failed", job_id)
            return _release_failed(job, record, error)
        _finish_record(record, ReleaseRecord.State.SUCCEEDED, result=_plain(result))
        job_services.complete_release(
            job=job,
            actor=RELEASE_ACTOR,
            message=f"Carried out once: {_effect_words(spec, job).rstrip('.')}.",
            result=_plain(result),
        )
        record.refresh_from_db()
        return record


def _plain(result):
    return result if isinstance(result, dict | list | str | int | float | None) else str(result)


def _finish_record(record, state, *, result=None, error=""):
    ReleaseRecord.objects.filter(pk=record.pk).update(
        state=state,
        result=result,
        error=error,
        finished_at=timezone.now(),
        runs=F("runs") + int(state != ReleaseRecord.State.ABANDONED),
    )
    record.refresh_from_db()
    return record


def _release_failed(job, record, error):
    detail = str(error) or error.__class__.__name__
    _finish_record(record, ReleaseRecord.State.FAILED, error=detail[:2000])
    reason = (
        f"The approved action failed: {detail[:200]}. Nothing was released; the approved "
        "draft is kept for a person to decide what to do."
    )
    job_services.fail_release(job=job, actor=RELEASE_ACTOR, reason=reason)
    return record


def _effect_words(spec, job):
    """What the action did, in the job type's words (``Refund $25.00 to … for order …``)."""
    return spec.describe_effect(job.input) if spec.effect_summary else spec.title
