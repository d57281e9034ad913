"""Two transitions of one job at the same moment on PostgreSQL: one wins, one gets a conflict."""

import threading

import pytest
from django.db import connection, transaction
from django_fsm import ConcurrentTransition

from jobs import services
from jobs.errors import TransitionNotAllowed
from jobs.models import Job, Status
from tests.factories import JobFactory

pytestmark = [pytest.mark.pg, pytest.mark.django_db(transaction=True)]


def test_optimistic_lock_refuses_the_second_of_two_stale_saves():
    job = JobFactory()
    first, second = Job.objects.get(pk=job.pk), Job.objects.get(pk=job.pk)
    first.cancel()
    with transaction.atomic():
        first.save()
    second.start()
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        second.save()
    job.refresh_from_db()
    assert job.status == Status.CANCELED


def _race(job, barrier, results, name, call):
    try:
        barrier.wait()
        call(job)
        results[name] = "won"
    except TransitionNotAllowed as error:
        results[name] = error
    finally:
        connection.close()


CONTENDERS = {
    "cancel": lambda j: services.cancel_job(job=j, actor="user:test"),
    "expire": lambda j: services.expire_job(job=j, actor="system:expiry"),
}


@pytest.mark.parametrize("round_", range(10))
def test_cancel_racing_expiry_has_exactly_one_winner(round_):
    job = JobFactory()
    barrier, results = threading.Barrier(2), {}
    threads = [
        threading.Thread(target=_race, args=(job, barrier, results, name, call))
        for name, call in CONTENDERS.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    job.refresh_from_db()
    winners = [name for name, result in results.items() if result == "won"]
    assert len(winners) == 1, results
    loser = next(r for r in results.values() if r != "won")
    assert isinstance(loser, TransitionNotAllowed)  # ConcurrentUpdate is a subclass
    expected = {"cancel": Status.CANCELED, "expire": Status.EXPIRED}[winners[0]]
    assert job.status == expected
    moves = list(job.events.exclude(kind="submitted").values_list("to_status", flat=True))
    assert moves == [expected]  # no lost update, no second event
