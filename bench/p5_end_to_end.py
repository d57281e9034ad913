"""P5: completed jobs/s from submit to completed, against django-q2's own no-op task throughput.

    python bench/p5_end_to_end.py --jobs 2000 --tasks 2000

Both designs run on one qcluster with ``Q_WORKERS=2`` and otherwise Steward's settings
(PostgreSQL, Redis broker), against the bundled fake OpenAI server with instant responses
(``FAKE_OPENAI_DURATION=0``):

- Steward: ``jobs`` ``summarize_document`` jobs (background lane, read_only, not sensitive,
  so they complete without review) submitted one after another through
  ``services.submit_job`` from this process, while the cluster dispatches them (one
  ``dispatch_job`` task each) and the pump (started as the app starts it, watchdog schedule
  installed) polls and finishes them. Throughput = jobs / (last ``completed_at`` − first
  submit); per-job latency = ``completed_at`` − ``created_at``.
- baseline: the same cluster settings, without the pump or its watchdog, running ``tasks``
  calls of ``bench.noop.noop`` enqueued one after another with ``async_task`` through one
  broker (one Redis connection; the default opens one per call), so that enqueueing is quick
  and the cluster, not the sender, sets the pace. Throughput = tasks / (the moment all have
  results − first enqueue): the queue is empty and the last-enqueued tasks have saved
  results (django-q2 keeps only the newest ``save_limit`` = 1000). Also reported: when the
  last one *ran* (its ``stopped``). Latency = ``stopped`` − enqueue time of the saved
  (newest) tasks.

Each cluster is started and seen working (one warm-up job or task) before the clock starts.
Unless ``--profile 0``, it then profiles a worker-equivalent loop in this process with
cProfile (``dispatch_job`` per job, then pump turns until all are done) to show where the
time goes. Prints a markdown section; ``--results`` appends it to bench/RESULTS.md.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

FAKE_PORT = 8475
INPUT = {"title": "Bench", "document": "Revenue grew 4 % while costs fell. [bench p5]"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="Steward jobs submitted")
    parser.add_argument("--tasks", type=int, default=2000, help="no-op tasks enqueued")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120, help="seconds per design at most")
    parser.add_argument("--profile", type=int, default=100, help="jobs profiled (0: none)")
    parser.add_argument("--fake-port", type=int, default=FAKE_PORT)
    parser.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    return parser.parse_args(argv)


def cluster_env(fake, workers):
    from tests.processes import steward_env

    return steward_env(fake.base_url, Q_WORKERS=workers, FAKE_OPENAI_DURATION="0")


def submit(workspace, user):
    from jobs import services

    return services.submit_job(
        workspace=workspace, submitter=user, job_type="summarize_document", input=INPUT
    )


def wait_until(predicate, timeout, interval=0.2, sample=None, every=10.0):
    """Poll ``predicate``; call ``sample()`` every ``every`` seconds meanwhile."""
    deadline = time.monotonic() + timeout
    sampled = time.monotonic()
    while time.monotonic() < deadline:
        if predicate():
            return True
        if sample and time.monotonic() - sampled >= every:
            sample()
            sampled = time.monotonic()
        time.sleep(interval)
    return False


def queue_sampler(first, timeline, extra):
    """Appends ``t+N s: <extra()>, broker queue Q, results waiting for the monitor R``."""
    import redis
    from django.conf import settings

    queue = redis.Redis.from_url(settings.REDIS_URL)
    key = f"django_q:{settings.Q_CLUSTER['name']}:q"

    def sample():
        stat = cluster_stat()
        waiting = stat.done_q_size if stat else "?"
        timeline.append(
            f"t+{time.time() - first:.0f} s: {extra()}, broker queue {queue.llen(key)}, "
            f"results waiting for the monitor {waiting}"
        )

    return sample


# --- Steward -----------------------------------------------------------------------------------


def steward_run(args, fake):
    from django.db.models import Count
    from django_q.tasks import async_task

    from jobs.models import Job, Status
    from tests.processes import Cluster

    common.clean_slate()
    common.set_watchdog(True)
    fake.reset()
    workspace, user = common.bench_user()
    cluster = Cluster(cluster_env(fake, args.workers)).start()
    meter = common.TreeMeter(cluster.process.pid)
    try:
        async_task("jobs.tasks.run_pump", 0, group="pump")
        warm = submit(workspace, user)
        done = Job.objects.filter(pk=warm.pk, status=Status.COMPLETED).exists
        if not wait_until(done, 60):
            raise RuntimeError("the warm-up job did not complete; see var/test-logs")
        Job.objects.filter(pk=warm.pk).delete()
        meter = common.TreeMeter(cluster.process.pid)
        procs0 = common.process_tree(cluster.process.pid)
        cpu0 = time.process_time()
        first = time.time()
        for _ in range(args.jobs):
            submit(workspace, user)
        submitted = time.time()
        submit_cpu = time.process_time() - cpu0
        left = args.timeout - (submitted - first)
        timeline, oldest = [], [0.0]

        def progress():
            from jobs.models import Attempt, PumpSlot

            beat = PumpSlot.objects.filter(slot=0).values_list("heartbeat_at", flat=True).first()
            age = f"{time.time() - beat.timestamp():.0f} s" if beat else "never"
            if beat:
                oldest[0] = max(oldest[0], time.time() - beat.timestamp())
            return (
                f"{Job.objects.filter(status=Status.COMPLETED).count()} completed, "
                f"{Attempt.objects.count()} dispatched, pump heartbeat {age} old"
            )

        sample = queue_sampler(first, timeline, progress)
        sample()
        finished = wait_until(
            lambda: not Job.objects.exclude(status=Status.COMPLETED).exists(),
            max(left, 1),
            0.5,
            sample,
        )
        sample()
        meter.stop()
        named = roles(cluster_stat())
        procs = per_process_cpu(procs0, common.process_tree(cluster.process.pid), named)
    finally:
        cluster.stop()
    rows = Job.objects.filter(status=Status.COMPLETED).values_list("created_at", "completed_at")
    latencies = [(done - made).total_seconds() for made, done in rows]
    last = max(done for _, done in rows).timestamp() if rows else float("nan")
    statuses = dict(Job.objects.values_list("status").annotate(n=Count("pk")))
    from django_q.models import Task

    groups = dict(Task.objects.values_list("group").annotate(n=Count("pk")).order_by("-n"))
    return {
        "name": "Steward submit → completed",
        "count": args.jobs,
        "done": len(latencies),
        "finished": finished,
        "first": first,
        "last": last if finished else time.time(),
        "enqueue_s": submitted - first,
        "enqueue_cpu": submit_cpu,
        "latencies": latencies,
        "cpu": meter.cpu_seconds(),
        "rss": meter.peak_rss,
        "procs": procs,
        "timeline": timeline,
        "oldest_beat": f"{oldest[0]:.0f} s",
        "statuses": statuses,
        "groups": groups,
        "provider": fake.stats(responses=False)["routes"],
    }


# --- no-op baseline ----------------------------------------------------------------------------


def noop_run(args, fake):
    import redis
    from django.conf import settings
    from django_q.brokers import get_broker
    from django_q.models import Failure, Task
    from django_q.tasks import async_task

    from tests.processes import Cluster

    common.clean_slate()
    common.set_watchdog(False)
    queue = redis.Redis.from_url(settings.REDIS_URL)
    queue_key = f"django_q:{settings.Q_CLUSTER['name']}:q"
    cluster = Cluster(cluster_env(fake, args.workers)).start()
    try:
        warm = async_task("bench.noop.noop", group="noop-warm")
        if not wait_until(Task.objects.filter(id=warm).exists, 60):
            raise RuntimeError("the warm-up task did not run; see var/test-logs")
        meter = common.TreeMeter(cluster.process.pid)
        procs0 = common.process_tree(cluster.process.pid)
        cpu0 = time.process_time()
        sent, broker = {}, get_broker()
        first = time.time()
        for _ in range(args.tasks):
            sent[async_task("bench.noop.noop", group="noop", broker=broker)] = time.time()
        enqueued = time.time()
        enqueue_cpu = time.process_time() - cpu0
        tail = list(sent)[-20:]

        def all_done():
            if queue.llen(queue_key):
                return False
            return Task.objects.filter(id__in=tail).count() == len(tail)

        timeline = []
        sample = queue_sampler(first, timeline, lambda: f"{len(sent)} enqueued")
        sample()
        finished = wait_until(all_done, max(args.timeout - (enqueued - first), 1), 0.2, sample)
        saved_at = time.time()
        time.sleep(1)  # let the monitor save the last results
        meter.stop()
        named = roles(cluster_stat())
        procs = per_process_cpu(procs0, common.process_tree(cluster.process.pid), named)
    finally:
        cluster.stop()
        common.set_watchdog(True)
    left = queue.llen(queue_key)
    saved = list(Task.objects.filter(group="noop").values_list("id", "stopped"))
    executed = max(stopped for _, stopped in saved).timestamp() if saved else float("nan")
    latencies = [stopped.timestamp() - sent[tid] for tid, stopped in saved if tid in sent]
    return {
        "name": "django-q2 no-op task (results saved)",
        "executed": executed,
        "count": args.tasks,
        # older results are pruned (save_limit): count from the queue, not from the table
        "done": args.tasks if finished else args.tasks - left,
        "finished": finished,
        "first": first,
        "last": saved_at,
        "enqueue_s": enqueued - first,
        "enqueue_cpu": enqueue_cpu,
        "latencies": latencies,
        "cpu": meter.cpu_seconds(),
        "rss": meter.peak_rss,
        "procs": procs,
        "timeline": timeline,
        "failures": Failure.objects.filter(group="noop").count(),
    }


# --- profile -----------------------------------------------------------------------------------


def _area(filename):
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if str(common.ROOT) in filename:
        return "steward:" + filename.split(str(common.ROOT) + "/", 1)[1].split("/", 1)[0]
    return "builtins (socket waits included)" if filename == "~" else "python stdlib"


def cluster_stat():
    """django-q2's own status of our cluster (it saves one to Redis every guard cycle)."""
    from django_q.status import Stat

    stats = Stat.get_all()
    return stats[0] if stats else None


def roles(stat):
    if stat is None:
        return {}
    # run_workers is the sentinel; its pusher and monitor are threads of it (jobs.execution.cluster)
    named = {stat.sentinel: "sentinel (pusher, monitor)"}
    named.update({pid: "worker" for pid in stat.workers})
    return named


def per_process_cpu(before, after, named):
    """CPU seconds of each cluster process over the run, heaviest first, named by role
    (the sentinel's monitor thread saves every task's result)."""
    spent = [
        (after[pid]["cpu"] - before.get(pid, {"cpu": 0.0})["cpu"], named.get(pid, "other"))
        for pid in after
    ]
    return ", ".join(f"{role} {cpu:.1f}" for cpu, role in sorted(spent, reverse=True) if cpu >= 0.1)


class Phase:
    """One profiled phase: cProfile, CPU and wall time while enabled, SQL statements."""

    def __init__(self, name):
        self.name = name
        self.profiler = cProfile.Profile()
        self.cpu = self.wall = 0.0
        self.statements = 0

    def run(self, func, *args):
        from django.db import connection

        def count(execute, sql, params, many, context):
            self.statements += 1
            return execute(sql, params, many, context)

        cpu, wall = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(count):
            self.profiler.enable()
            try:
                return func(*args)
            finally:
                self.profiler.disable()
                self.cpu += time.process_time() - cpu
                self.wall += time.perf_counter() - wall

    def summary(self, jobs, top=6):
        stats = pstats.Stats(self.profiler).stats
        areas, own_code = {}, []
        for (filename, _line, func), (_, _, own, cum, _) in stats.items():
            areas[_area(filename)] = areas.get(_area(filename), 0.0) + own
            if _area(filename).startswith("steward:") and "/bench/" not in filename:
                short = filename.split(str(common.ROOT) + "/", 1)[1]
                own_code.append((cum, f"{short}:{func}"))
        total = sum(areas.values()) or 1.0
        shares = sorted(((k, v / total) for k, v in areas.items()), key=lambda kv: -kv[1])
        own_code.sort(reverse=True)
        return (
            f"- {self.name}: {self.wall / jobs * 1000:.1f} ms wall, {self.cpu / jobs * 1000:.1f} "
            f"ms CPU, {self.statements / jobs:.1f} SQL statements per job. Heaviest Steward "
            f"functions (cumulative ms/job): "
            + ", ".join(f"`{name}` {cum / jobs * 1000:.1f}" for cum, name in own_code[:top])
            + ". Own time by package: "
            + ", ".join(f"{k} {v:.0%}" for k, v in shares[:6])
            + "."
        )


def profile_loop(args, fake):
    """What the workers do per job, in this process under cProfile: ``tasks.dispatch_job``
    for each submitted job (as the dispatch tasks do), then pump turns (``claim_due`` +
    ``process_claimed``) until all are done. A few unprofiled jobs warm it up first."""
    from jobs import execution, tasks
    from jobs.models import ACTIVE, Job

    common.clean_slate()
    fake.reset()
    workspace, user = common.bench_user()
    owner = execution.worker_name("bench-pump")

    def pump_turn():
        claimed = execution.claim_due(owner)
        if claimed:
            execution.process_claimed(claimed, owner)
        return claimed

    def drain(phase=None):
        deadline = time.monotonic() + 60
        while Job.objects.filter(status__in=ACTIVE).exists() and time.monotonic() < deadline:
            if not (phase.run(pump_turn) if phase else pump_turn()):
                time.sleep(0.1)

    for job_id in [str(submit(workspace, user).pk) for _ in range(3)]:
        tasks.dispatch_job(job_id)
    drain()
    Job.objects.all().delete()
    ids = [str(submit(workspace, user).pk) for _ in range(args.profile)]
    dispatch, pump = Phase("dispatch (`tasks.dispatch_job`)"), Phase("poll + finish (pump turns)")
    for job_id in ids:
        dispatch.run(tasks.dispatch_job, job_id)
    drain(pump)
    completed = Job.objects.filter(status="completed").count()
    text = "\n".join(
        [
            f"Where the time goes: a worker-equivalent loop in this process under cProfile "
            f"({len(ids)} jobs, {completed} completed; cProfile inflates Python time, and "
            f"waits on PostgreSQL show as psycopg's own time):",
            dispatch.summary(len(ids)),
            pump.summary(len(ids)),
        ]
    )
    common.clean_slate()
    return text


# --- output ------------------------------------------------------------------------------------


def rate(row):
    return row["done"] / (row["last"] - row["first"]) if row["done"] else 0.0


def table(rows):
    lines = [
        "| design | done / sent | throughput (first send → last done) | per-item latency "
        "p50 / p95 | sending took (CPU) | cluster CPU s (per process) | cluster peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latencies"]
        lines.append(
            f"| {r['name']} | {r['done']} / {r['count']}{'' if r['finished'] else ' (TIMED OUT)'}"
            f" | {rate(r):,.1f} /s over {r['last'] - r['first']:.1f} s | "
            f"{common.percentile(lat, 50):.2f} s / {common.percentile(lat, 95):.2f} s | "
            f"{r['enqueue_s']:.1f} s ({r['enqueue_cpu']:.1f} s) | {r['cpu']:.0f} "
            f"({r['procs']}) | "
            f"{common.mb(r['rss'])} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    os.environ.update(
        FAKE_OPENAI_DURATION="0", OPENAI_BASE_URL=f"http://127.0.0.1:{args.fake_port}/v1"
    )
    common.setup_django()
    from fake_openai.testing import FakeServer

    started, load_before = common.utc_now_text(), common.machine_notes()
    with FakeServer(port=args.fake_port, seed=1) as fake:
        print(f"no-op baseline: {args.tasks} tasks …", flush=True)
        noop = noop_run(args, fake)
        print(table([noop]), flush=True)
        print(f"Steward: {args.jobs} jobs …", flush=True)
        steward = steward_run(args, fake)
        print(table([steward]), flush=True)
        load_after = common.machine_notes()
        found = None
        if args.profile:
            print(f"profiling {args.profile} jobs in process …", flush=True)
            found = profile_loop(args, fake)
    common.clean_slate()
    ratio = rate(steward) / rate(noop) if rate(noop) else float("nan")
    ran = noop["executed"] - noop["first"]
    ran_rate = noop["done"] / ran if ran > 0 else float("nan")
    parts = [
        f"Run started {started}; one qcluster, Q_WORKERS={args.workers}, Steward's settings "
        f"(PostgreSQL, Redis broker, save_limit 1000, bulk 10, poll interval "
        f"{os.environ.get('POLL_MIN_INTERVAL', '1.5')} s min); fake OpenAI with "
        f"FAKE_OPENAI_DURATION=0; jobs submitted / tasks enqueued one by one from the bench "
        f"process while the cluster works.",
        f"Machine: {load_before} at start, {load_after} after the two runs.",
        "",
        table([noop, steward]),
        "",
        f"Steward job statuses at the end: {steward['statuses']}; provider calls: "
        f"{steward['provider']}; django-q2 tasks among the newest saved results, by group: "
        f"{steward['groups']}. No-op failures: {noop['failures']} "
        f"(latency from the {len(noop['latencies'])} newest saved results).",
        "",
        f"Steward / no-op: {ratio:.0%} (target ≥ 50 %: {'met' if ratio >= 0.5 else 'MISSED'}). "
        f"The no-op tasks had all *run* (last `stopped`) {ran:.1f} s after the first "
        f"enqueue ({ran_rate:,.0f} /s); the rest of the no-op span is the monitor saving "
        f"results. Against that rate Steward reaches {rate(steward) / ran_rate:.1%}.",
        "",
        f"Pump heartbeat: oldest seen {steward['oldest_beat']} (PUMP_STALE_SECONDS "
        f"{os.environ.get('PUMP_STALE_SECONDS', '20')} s; a pump beats about every 5 s while "
        "it runs). Progress samples (every 10 s):",
        "",
        *[f"- no-op {line}" for line in noop["timeline"]],
        *[f"- Steward {line}" for line in steward["timeline"]],
        "",
        "How to read: throughput counts items done between the first submit/enqueue and the "
        "last completion (the sending loop is inside that span, so a slow sender caps both). "
        "A Steward job is done when its status is completed (provider response created by the "
        "dispatch task, then retrieved and finished by the pump: at least one poll interval "
        "after dispatch). Cluster CPU is the qcluster process tree's over the run; PostgreSQL, "
        "Redis, the fake server and the sending process are not in it.",
    ]
    if found:
        parts += ["", found]
    text = "\n".join(parts)
    print("\n" + text)
    if args.results:
        common.append_results("p5_end_to_end.py", "P5 end to end", text, argv)


if __name__ == "__main__":
    main()
