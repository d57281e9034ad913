"""Real processes for tests: the fake OpenAI server and qcluster workers on the test database."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url():
    """A DATABASE_URL for the database pytest-django created, so subprocesses share it."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host, port, user = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432, db.get("USER")
    auth = f"{user}@" if user else ""
    return f"postgres://{auth}{host}:{port}/{db['NAME']}"


def steward_env(fake_base_url, **extra):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        OPENAI_BASE_URL=fake_base_url,
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="config.settings",
        # TEST_WORKER_LOG_LEVEL=INFO keeps django-q's scheduler and reincarnation lines in
        # var/test-logs/ when a worker test has to be debugged
        LOG_LEVEL=os.environ.get("TEST_WORKER_LOG_LEVEL", "WARNING"),
    )
    env.pop("OPENAI_API_KEY", None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Cluster:
    """``manage.py run_workers`` (django-q2's qcluster under Steward's wedge watch) in its own
    process group, so a test can SIGKILL all of it or any of its workers."""

    def __init__(self, env):
        self.env = env
        self.process = None

    def start(self):
        log_dir = ROOT / "var" / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"qcluster-{self.env.get('Q_CLUSTER_NAME', 'default')}.log"
        env = dict(self.env)
        if env.get("DJANGO_SETTINGS_MODULE", "config.settings") == "config.settings":
            env["DJANGO_SETTINGS_MODULE"] = "config.workers"  # the web settings, for workers
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()  # tests of one queue name share the file
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_workers", "--skip-checks"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self):
        """SIGKILL the cluster and all its workers: nothing gets to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        """SIGTERM first (run_workers stops its workers and exits), then SIGKILL whatever of
        the group is left."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_since_start(self):
        """What was logged to this cluster's file since it started (later clusters of the same
        queue name included)."""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def worker_pids(self):
        """The pids of this cluster's django-q worker processes, still in its process group.
        From the cluster's own status report where this process can read it (a shared Redis
        cache); otherwise from the process tree: run_workers is the sentinel, and its pusher
        and monitor are threads, so its children are its workers."""
        from django_q.status import Stat

        for stat in Stat.get_all():
            if stat.sentinel == self.process.pid:
                alive = [pid for pid in stat.workers if _in_group(pid, self.process.pid)]
                if alive:
                    return alive
        workers = _children(self.process.pid)
        return [pid for pid in workers if _in_group(pid, self.process.pid)]

    def __enter__(self):
        return self if self.process else self.start()

    def __exit__(self, *exc):
        self.stop()


def _in_group(pid, group):
    try:
        return os.getpgid(pid) == group
    except ProcessLookupError:
        return False


def group_members(group):
    """Live or zombie processes still in process group ``group``; Linux's /proc."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _in_group(int(entry), group)
    ]


def _children(parent):
    """Live child processes of ``parent``, oldest (lowest pid) first; Linux's /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, ppid = stat.read().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(ppid) == parent and state not in ("Z", "X"):
            children.append(int(entry))
    return sorted(children)


def start_cluster_with_pumps(env, pump_slots=(0,)):
    """Start a cluster and a pump for each slot. Tests flush the migration's watchdog schedule,
    so it is put back first: a pump killed with its worker is restarted as in production."""
    from django_q.models import Schedule
    from django_q.tasks import async_task

    Schedule.objects.get_or_create(
        name="steward-pump-watchdog",
        defaults={
            "func": "jobs.tasks.watchdog",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    cluster = Cluster(env).start()
    for slot in pump_slots:
        async_task("jobs.tasks.run_pump", slot, group="pump")
    return cluster


def wait_for(predicate, *, timeout=30.0, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def web_server(role, **env):
    """Steward under uvicorn (as deployed) on the test database, connecting as PostgreSQL
    ``role`` with a pool of ``DATABASE_POOL_SIZE`` (8 unless ``env`` says otherwise); yields its
    port once it listens."""
    db = connection.settings_dict
    port = free_port()
    server_env = dict(
        os.environ,
        DATABASE_URL=(
            f"postgres://{role}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/"
            f"{db['NAME']}"
        ),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_POOL_SIZE="8",
        DEBUG="false",
    )
    server_env.update({key: str(value) for key, value in env.items()})
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=server_env,
    )
    try:

        def listening():
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=30, message="the web server to listen")
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a request still in flight holds it up
            server.kill()
            server.wait(timeout=10)
