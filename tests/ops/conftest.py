from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from jobs.models import Attempt, Job, Status
from tests.factories import JobFactory


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


def finished_job(workspace, *, status=Status.COMPLETED, costs=(), ago=timedelta(hours=1), **times):
    """A finished job whose timeline is ``times`` (seconds after creation) and whose attempts
    cost ``costs``; it finished ``ago`` before now. Its last attempt starts at
    ``times["attempt_started"]`` (default: the job's start), earlier ones at the job's start."""
    job = JobFactory(workspace=workspace, status=status, **times.pop("fields", {}))
    finished = timezone.now() - ago
    total = times.get("total", 100)
    created = finished - timedelta(seconds=total)

    def at(key):
        return created + timedelta(seconds=times[key]) if key in times else None

    Job.objects.filter(pk=job.pk).update(
        created_at=created,
        started_at=at("started"),
        provider_finished_at=at("provider_finished"),
        reviewed_at=at("reviewed"),
        completed_at=finished if status == Status.COMPLETED else None,
        finished_at=finished,
    )
    for number, cost in enumerate(costs, start=1):
        last = number == len(costs)
        attempt = Attempt.objects.create(
            job=job,
            number=number,
            state=Attempt.State.SUCCEEDED if last else Attempt.State.FAILED,
            cost=Decimal(cost),
            input_tokens=100,
            output_tokens=10,
        )
        began = (at("attempt_started") if last else None) or at("started") or created
        Attempt.objects.filter(pk=attempt.pk).update(started_at=began)
    job.refresh_from_db()
    return job
