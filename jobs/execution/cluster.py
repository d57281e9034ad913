"""Run django-q2's cluster in three processes, and start a fresh one when a killed worker has
wedged it.

**Layout.** django-q2's ``qcluster`` is six processes for two workers: the command itself, a
sentinel it forks, and the sentinel's forks (the workers, a pusher that moves tasks from the
broker to the workers' queue, a monitor that saves their results). Each is a forked Django and
counts ~50 MB of RSS, so the bare layout was ~310 MB before a worker did any work (see "Cluster
memory" in bench/RESULTS.md). ``run_workers`` runs the sentinel itself, in its own process,
and runs the pusher and the monitor as threads of it: both spend their time waiting on a
socket (the broker, the result queue), and the sentinel's guard loop restarts a dead thread as
it restarts a dead process. The workers stay processes: they are where tasks run.

**Wedges.** django-q2's workers take tasks from one ``multiprocessing`` queue, and the idle
worker waiting for the next task holds that queue's read lock while it waits. If that worker is
SIGKILLed (the OOM killer, ``kill -9``, a container runtime), the lock dies with it: every
other worker then waits for it forever, the pusher fills the queue and stops, and the cluster
runs nothing again although all its processes look alive. A worker killed while it holds its
timer lock freezes the sentinel's guard loop the same way: dead workers are no longer replaced
and schedules (the pump watchdog among them) stop. R1 (tests/chaos) found this; killing both
idle workers of a quiet two-worker cluster reproduces it every time.

The sentinel keeps a *wedge watch*: a thread that looks once a second for either sign (a task
waits in the queue while a live worker sits idle; a dead worker, pusher or monitor is not
replaced), and when one lasts ``WORKER_WEDGE_SECONDS`` it kills the workers and starts
``run_workers`` again in the same process (``exec``), with new queues and locks. Work the old
cluster held is recovered as after any crash: leases lapse and the jobs are claimed again, the
watchdog restarts pumps, streams resume.

**What this leans on, and why it is pinned.** ``WatchedSentinel`` subclasses django-q2's
``Sentinel``, swaps its ``result_queue.close`` during a stop, and reads each worker's ``timer``
and the task queue's ``size`` without their locks. None of that is public API, so django-q2 is
pinned to the version this was written and tested against (``DJANGO_Q2_VERSION``, pyproject.toml)
and ``tests/jobs/test_cluster_pin.py`` fails on any other. The upstream reports it works
around: django-q2 #23 (when the worker next in line to take a task dies, the whole cluster stops
taking tasks: the read lock above), #339 (a kill can leave ``result_queue``'s lock held, so the
monitor blocks for ever while it still looks alive) and #346 (listed with those two by the team
as a known cluster bug; its text was not available where this was written).
"""

import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import time
import uuid

from django import db
from django.conf import settings
from django_q import cluster as q_cluster
from django_q.monitor import monitor
from django_q.pusher import pusher
from django_q.signals import post_spawn

log = logging.getLogger(__name__)
# The django-q2 release whose internals this module reads (see the module docstring).
DJANGO_Q2_VERSION = "1.11.1"
# Set when the sentinel begins to stop; created before the workers fork, so they share it.
_stopping = None


def stopping():
    """True in a worker whose cluster is shutting down: a long task (the pump) ends its turn
    rather than hold the stop up. Always false outside ``run_workers``."""
    return _stopping is not None and _stopping.is_set()


def _raw(shared):
    """A ``multiprocessing.Value``'s number, read without its lock: a dead holder would make
    the lock wait forever, which is one of the things being looked for."""
    return shared.get_obj().value


def _gone(pid):
    """True if ``pid`` exited (or is a zombie nobody reaped). Linux's /proc; elsewhere this
    sign is not watched."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return state in ("Z", "X")


class Helper(threading.Thread):
    """The pusher or the monitor as a thread of the sentinel. It has what django-q2's guard
    loop and status report use of a process: ``pid`` (the sentinel's), ``name``,
    ``is_alive``. Its database connections close when it ends."""

    def __init__(self, role, target, *args):
        super().__init__(target=target, args=args, name=f"{role}-{uuid.uuid4().hex[:8]}")
        self.daemon = True
        self.pid = os.getpid()

    def run(self):
        try:
            super().run()
        finally:
            db.connections.close_all()


class WatchedSentinel(q_cluster.Sentinel):
    """django-q2's sentinel with its pusher and monitor as threads, plus the wedge watch."""

    def spawn_pusher(self):
        return self._spawn_helper("pusher", pusher, self.task_queue, self.event_out, self.broker)

    def spawn_monitor(self):
        return self._spawn_helper("monitor", monitor, self.result_queue, self.broker)

    def _spawn_helper(self, role, target, *args):
        helper = Helper(role, target, *args)
        helper.start()
        return helper

    def stop(self):
        if _stopping is not None:
            _stopping.set()
        # django-q2's stop puts STOP on the result queue and closes it at once, which closes
        # the queue's reading end. Its monitor process kept a reading end of its own; the
        # monitor thread shares this one, so the close waits until the thread has saved the
        # last results and read the STOP.
        close = self.result_queue.close

        def close_after_the_monitor():
            if self.monitor is not None:
                self.monitor.join(timeout=self.timeout or 30)
            close()

        self.result_queue.close = close_after_the_monitor
        super().stop()

    def spawn_cluster(self):
        super().spawn_cluster()
        threading.Thread(target=self._watch, name="wedge-watch", daemon=True).start()

    def wedge_signs(self):
        """What looks wedged right now, in words (empty when all is well)."""
        signs = []
        idle = [p for p in self.pool if _raw(p.timer) == -1 and not _gone(p.pid)]
        if _raw(self.task_queue.size.count) > 0 and idle:
            signs.append("tasks wait in the queue while a worker is idle")
        dead = [p.name for p in (self.pusher, self.monitor) if p and not p.is_alive()]
        if os.path.isdir("/proc"):
            dead += [p.name for p in self.pool if _gone(p.pid)]
        if dead:
            signs.append(f"dead processes are not replaced ({', '.join(dead)})")
        return signs

    def _watch(self):
        since = {}
        while not self.stop_event.is_set():
            time.sleep(1)
            now = time.monotonic()
            signs = self.wedge_signs()
            since = {sign: since.get(sign, now) for sign in signs}
            lasting = [sign for sign, first in since.items() if now - first >= _wedge_seconds()]
            if lasting and not self.stop_event.is_set():
                self._restart_wedged(lasting)

    def _restart_wedged(self, signs):
        log.critical(
            "the task cluster is wedged (%s for %s s): starting a new one",
            "; ".join(signs),
            _wedge_seconds(),
        )
        for process in self.pool:
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGKILL)
        for process in self.pool:
            with contextlib.suppress(OSError):
                os.waitpid(process.pid, 0)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        # The same command line, in this process: its pid (and a supervisor's view of it) stays.
        os.execv(sys.executable, sys.orig_argv)


def _wedge_seconds():
    return settings.WORKER_WEDGE_SECONDS


def _worker_signals():
    """A forked worker takes the dispositions django-q2's own sentinel gives its children
    rather than the sentinel's handler: Ctrl-C is the sentinel's to act on, SIGTERM ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _load_runtime(sender, proc_name, **kwargs):
    """A worker loads the provider (the openai SDK and aiohttp, ~0.7 s of CPU) when it spawns,
    while it is idle, not inside the first task or pump turn that needs it: the sentinel does
    not import them before it forks (``jobs.execution``'s docstring), and a pump turn that
    imports them holds every due job meanwhile."""
    importlib.import_module("jobs.execution.pump")
    importlib.import_module("jobs.execution.lanes")


def supervise():
    """Run the cluster in this process until SIGTERM or Ctrl-C stops it."""
    global _stopping
    context = q_cluster.get_mp_context()
    _stopping = context.Event()
    sentinel = WatchedSentinel(context.Event(), context.Event(), uuid.uuid4(), start=False)
    sentinel.parent_pid = None  # the cluster's pid in django-q2's status report is this one

    def stop(signum, frame):
        # From a thread: the guard loop may hold the event's lock when the signal lands.
        threading.Thread(target=sentinel.stop_event.set, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.register_at_fork(after_in_child=_worker_signals)
    post_spawn.connect(_load_runtime, dispatch_uid="steward-load-runtime")
    sentinel.start()
    return 0
