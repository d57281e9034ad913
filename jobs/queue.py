"""Handing work to django-q2 workers: every enqueue in Steward goes through ``enqueue``.

django-q2's ``async_task`` builds a new broker (and, on Redis, a new connection pool and TCP
connection) for every call unless it is given one; that was about a third of an API submit's
time (bench/RESULTS.md, P4). One broker per process is reused instead: redis-py's pool is
thread-safe and resets itself in a forked child, and the ORM broker holds no connection.

Successful runs are not saved (``save=False``): a job's own events are its record, and saving
cost django-q2's monitor a locked read of up to ``save_limit`` saved results per task, which
made the monitor the cluster's busiest process (bench/RESULTS.md, P5). Failures are still saved
and show in Django admin.
"""

from functools import cache


@cache
def shared_broker():
    from django_q.brokers import get_broker

    return get_broker()


def enqueue(func_path, *args, group=None):
    """Queue ``func_path(*args)`` for a worker; the group defaults to the function's name."""
    from django_q.tasks import async_task

    return async_task(
        func_path,
        *args,
        group=group or func_path.rsplit(".", 1)[-1],
        broker=shared_broker(),
        save=False,
    )
