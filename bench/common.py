"""Shared plumbing for the benchmark scripts: Django set-up, a clean slate, process metrics,
the job population and percentiles. Nothing here is imported by Steward itself."""

import asyncio
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/steward_bench",
    "REDIS_URL": "redis://127.0.0.1:6379/6",
    "Q_CLUSTER_NAME": "steward-bench",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "LOG_LEVEL": "WARNING",
}
MIN_DURATION, MAX_DURATION = 30.0, 600.0


def prepare_database(url):
    """Create the bench database if it is missing and bring its schema up to date."""
    name = url.rsplit("/", 1)[1]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=url),
        check=True,
    )


def setup_django():
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("OPENAI_API_KEY", None)
    prepare_database(os.environ["DATABASE_URL"])
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def machine_notes():
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; "
        f"calibration {calibration_ms():.1f} ms"
    )


def calibration_ms():
    """Milliseconds this machine takes for a fixed pure-Python workload (the sum of the squares
    of the first million integers; median of five): a figure recorded with every run, so runs
    on other machines of the same kind can be compared with it."""
    import time

    times = []
    for _ in range(5):
        start = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[2]


def append_results(script, title, text, argv=None):
    """Append a run's section to bench/RESULTS.md with its command and date."""
    path = ROOT / "bench" / "RESULTS.md"
    if not path.exists():
        path.write_text("# Steward benchmark results\n")
    command = f"python bench/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    with path.open("a") as out:
        out.write(f"\n## {title} ({utc_now_text()})\n\nCommand: `{command}`\n\n{text}\n")


def utc_now_text():
    return subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()


def clean_slate(redis_too=True):
    """Forget every job and all queue state in the bench database (and the Redis db)."""
    import redis
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE jobs_job, jobs_attempt, jobs_jobevent, jobs_artifact, jobs_webhookreceipt,"
            " jobs_pumpslot, jobs_providercallwindow, jobs_circuitstate, django_q_task,"
            " django_q_ormq CASCADE"
        )
    if redis_too:
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


def set_watchdog(enabled):
    """The pump watchdog schedule (installed by migration 0003); the naive baseline runs
    without it so that no pump competes with its tasks."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.filter(name="steward-pump-watchdog").delete()
    if enabled:
        Schedule.objects.create(
            name="steward-pump-watchdog",
            func="jobs.tasks.watchdog",
            schedule_type=Schedule.MINUTES,
            minutes=1,
            repeats=-1,
            next_run=timezone.now(),
        )


def bench_user():
    from accounts.models import Membership, Workspace
    from tests.factories import member_of

    workspace, created = Workspace.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    membership = Membership.objects.filter(workspace=workspace).first()
    user = membership.user if membership else member_of(workspace)
    return workspace, user


# --- the job population --------------------------------------------------------------------


@dataclass
class Planned:
    """One in-flight job at the moment the run starts: its total duration and age so far."""

    duration: float
    age: float

    @property
    def remaining(self):
        return max(0.05, self.duration - self.age)

    @property
    def queued_left(self):
        return max(0.0, 0.2 * self.duration - self.age)


def draw_duration(rng, scale=1.0):
    return rng.uniform(MIN_DURATION, MAX_DURATION) * scale


def steady_state(count, rng, scale=1.0):
    """Jobs as a steady stream with uniform(30 s, 10 min) durations would leave them in flight
    at a random instant: durations length-biased, ages uniform within each duration."""
    planned = []
    while len(planned) < count:
        duration = draw_duration(rng, scale)
        if rng.random() < duration / (MAX_DURATION * scale):
            planned.append(Planned(duration, rng.uniform(0, duration)))
    return planned


HISTORY_SUMMARY = "Bench history"


def bench_job(spec, *, document, **fields):
    """An unsaved job row of job type ``spec`` for the bench user, on its first attempt."""
    from jobs.models import Job

    workspace, user = bench_user()
    return Job(
        workspace=workspace,
        submitter=user,
        job_type=spec.name,
        authority_class=spec.authority_class,
        lane=spec.lane,
        model=spec.model,
        input={"title": "Bench", "document": document},
        attempt_count=1,
        **fields,
    )


def seed_history(count, rng, scale=1.0, job_type="summarize_document"):
    """``count`` jobs of ``job_type`` that completed in the last hour, with run times from the
    same distribution: the history a running installation has, from which Steward's pacing
    learns when a new job is first worth a look (jobs/execution/pacing.py). 0 seeds none."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.job_types import get_job_type
    from jobs.models import Attempt, Job, Status

    spec, now = get_job_type(job_type), timezone.now()
    jobs, attempts = [], []
    for _ in range(count):
        job = bench_job(
            spec,
            document="Bench history.",
            input_summary=HISTORY_SUMMARY,
            status=Status.COMPLETED,
            expires_at=now,
        )
        jobs.append(job)
        attempts.append(
            Attempt(
                job=job,
                number=1,
                state=Attempt.State.SUCCEEDED,
                provider_status="completed",
                model=spec.model,
                provider_seconds=round(draw_duration(rng, scale)),  # whole seconds, as OpenAI
                finished_at=now - timedelta(seconds=rng.uniform(0, 3600)),
            )
        )
    Job.objects.bulk_create(jobs, batch_size=1000)
    Attempt.objects.bulk_create(attempts, batch_size=1000)


def allowance(duration):
    """The detection-lag target for a job of this duration."""
    return max(2.0, 0.1 * duration)


async def create_responses(base_url, bodies, concurrency=48):
    """POST many background responses to the fake; returns [(response id, sent at)]."""
    import httpx2 as httpx

    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(body):
            async with semaphore:
                sent = time.time()
                reply = await client.post(
                    "/responses", json=body, headers={"authorization": "Bearer bench"}
                )
                reply.raise_for_status()
                return reply.json()["id"], sent

        return await asyncio.gather(*(one(body) for body in bodies))


def response_body(job_id, remaining, queued_left, text="Benchmark document."):
    return {
        "model": "gpt-5-mini",
        "input": text,
        "background": True,
        "store": True,
        "metadata": {
            "job_id": str(job_id),
            "attempt": "1",
            "fake_duration": f"{remaining:.3f}",
            "fake_queued_for": f"{queued_left:.3f}",
            "fake_output_chars": "200",
        },
    }


# --- processes -----------------------------------------------------------------------------

_CLK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid):
    with open(f"/proc/{pid}/stat") as handle:
        raw = handle.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid=4, utime=14, stime=15, cutime=16, cstime=17, rss=24
    return {
        "ppid": int(fields[1]),
        "cpu": sum(int(fields[i]) for i in (11, 12, 13, 14)) / _CLK,
        "rss": int(fields[21]) * _PAGE,
    }


def process_tree(root_pid):
    """``{pid: stat}`` for ``root_pid`` and all its descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _stat(entry)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    tree, frontier = {}, [root_pid]
    while frontier:
        pid = frontier.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid]
            frontier.extend(p for p, s in stats.items() if s["ppid"] == pid)
    return tree


def pss_bytes(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return 0


class TreeMeter:
    """CPU seconds (utime+stime, reaped children included) and peak RSS/PSS of a process
    tree, sampled while a run goes on."""

    def __init__(self, root_pid):
        self.root_pid = root_pid
        self.peak_rss = self.peak_pss = 0
        self.processes = 0
        self.cpu_start = self._cpu()
        self.cpu_end = None

    def _cpu(self):
        return sum(s["cpu"] for s in process_tree(self.root_pid).values())

    def sample(self):
        tree = process_tree(self.root_pid)
        self.processes = len(tree)
        self.peak_rss = max(self.peak_rss, sum(s["rss"] for s in tree.values()))
        self.peak_pss = max(self.peak_pss, sum(pss_bytes(pid) for pid in tree))

    def stop(self):
        """Freeze the CPU figure (call before the processes exit)."""
        self.sample()
        self.cpu_end = self._cpu()

    def cpu_seconds(self):
        return (self.cpu_end if self.cpu_end is not None else self._cpu()) - self.cpu_start


# --- figures -------------------------------------------------------------------------------


def percentile(values, q):
    """Nearest-rank percentile; ``inf`` entries count (they are misses)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt(seconds):
    if seconds != seconds:
        return "n/a"
    if math.isinf(seconds):
        return "missed"
    return f"{seconds:.2f} s"


def mb(size):
    return f"{size / 2**20:.0f} MB"


def new_rng(seed):
    return random.Random(seed)
