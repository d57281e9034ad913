"""Run django-q2's cluster and start a fresh one when a killed worker has wedged it.

Why this exists: django-q2's workers take tasks from one ``multiprocessing`` queue, and the
idle worker waiting for the next task holds that queue's read lock while it waits. If that
worker is SIGKILLed (the OOM killer, ``kill -9``, a container runtime), the lock dies with it:
every other worker then waits for it forever, the pusher fills the queue and stops, and the
cluster runs nothing again although all its processes look alive. A worker killed while it
holds its timer lock freezes the sentinel's guard loop the same way: dead workers are no
longer replaced and schedules (the pump watchdog among them) stop. R1 (tests/chaos) found
this; killing both idle workers of a quiet two-worker cluster reproduces it every time.

``supervise`` (``manage.py run_workers``) runs the cluster with a sentinel that also keeps a
*wedge watch*: a thread that looks once a second for either sign (a task waits in the queue
while a live worker sits idle; a dead cluster process is not replaced), and when one lasts
``WORKER_WEDGE_SECONDS`` it kills the cluster's processes and exits. ``supervise`` then starts
a new cluster with new queues. Work the old one held is recovered as after any crash: leases
lapse and the jobs are claimed again, the watchdog restarts pumps, streams resume.
"""

import contextlib
import logging
import os
import signal
import threading
import time

from django.conf import settings
from django_q import cluster as q_cluster

log = logging.getLogger(__name__)
WEDGED_EXIT = 75  # the sentinel's exit code when the wedge watch stopped it


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


class WatchedSentinel(q_cluster.Sentinel):
    """django-q2's sentinel plus the wedge watch thread (started once its processes exist)."""

    def spawn_cluster(self):
        super().spawn_cluster()
        threading.Thread(target=self._watch, name="wedge-watch", daemon=True).start()

    def wedge_signs(self):
        """What looks wedged right now, in words (empty when all is well)."""
        signs = []
        idle = [p for p in self.pool if _raw(p.timer) == -1 and not _gone(p.pid)]
        if _raw(self.task_queue.size.count) > 0 and idle:
            signs.append("tasks wait in the queue while a worker is idle")
        if os.path.isdir("/proc"):
            dead = [p.name for p in [*self.pool, self.pusher, self.monitor] if p and _gone(p.pid)]
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
                self._stop_wedged(lasting)

    def _stop_wedged(self, signs):
        log.critical(
            "the task cluster is wedged (%s for %s s): stopping it so a new one starts",
            "; ".join(signs),
            _wedge_seconds(),
        )
        for process in [*self.pool, self.pusher, self.monitor]:
            if process is not None:
                with contextlib.suppress(OSError):
                    os.kill(process.pid, signal.SIGKILL)
        os._exit(WEDGED_EXIT)


def _wedge_seconds():
    return settings.WORKER_WEDGE_SECONDS


def supervise():
    """Run clusters until one stops for another reason than a wedge (SIGTERM, Ctrl-C)."""
    # django-q2's Cluster.start names its sentinel class through this module global; only this
    # process (the one ``run_workers`` runs in) swaps it.
    q_cluster.Sentinel = WatchedSentinel
    while True:
        cluster = q_cluster.Cluster()
        cluster.start()
        cluster.sentinel.join()
        if cluster.sentinel.exitcode != WEDGED_EXIT:
            return cluster.sentinel.exitcode
        log.warning("starting a new task cluster after the wedged one stopped")
