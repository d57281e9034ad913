"""jobs/execution/cluster.py reads django-q2's internals (its Sentinel, the workers' timers,
the task queue's size), so it runs only on the release it was written against."""

from importlib.metadata import version

from jobs.execution.cluster import DJANGO_Q2_VERSION


def test_django_q2_is_the_release_the_cluster_code_was_written_for():
    assert version("django-q2") == DJANGO_Q2_VERSION, (
        "jobs/execution/cluster.py depends on django-q2's internals: re-check WatchedSentinel, "
        "the wedge watch and the stop against this release, then update DJANGO_Q2_VERSION "
        "and the pin."
    )
