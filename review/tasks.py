"""django-q2 entry points of the review app: take IDs, call services."""

from . import release


def run_release(job_id):
    """Run an approved external effect once and complete its job. Safe to deliver twice or
    concurrently: ``release.release_approved`` keys the action on the job's ReleaseRecord."""
    record = release.release_approved(job_id=job_id)
    return record.state if record else None
