"""P1: how many in-flight jobs one qcluster (Q_WORKERS=2) tracks, against the naive baseline.

    python bench/p1_inflight.py --levels 1000,5000,10000 --window 210 --naive-level 1000

For each level the bench database is emptied, then filled with the population a steady stream
of jobs with uniform(30 s, 10 min) durations leaves in flight at a random instant (durations
length-biased, ages uniform): each job gets a real background response at the fake OpenAI
server (its *remaining* duration) and the job/attempt rows the dispatcher would have written,
with ``next_poll_at`` where Steward's backoff would have put it. Seeding writes rows directly
because dispatching 10,000 jobs one by one would take longer than the measurement. During the
run new jobs arrive through the real path (``submit_job`` → dispatch task → provider create),
keeping the level at N. After a warm-up the script measures, over the window:

- poll slip: retrieve time − the job's due ``next_poll_at`` (``STEWARD_POLL_LOG``);
- detection lag: ``Job.provider_finished_at`` − the provider's completion time, for jobs whose
  provider work ended inside the window early enough for their whole allowance
  (max(2 s, 10 % of duration)) to fit before it closes; a job not detected by the end of the
  window counts as a miss. The completion time used is a lower bound (the create request's send
  time, or the attempt's start, plus the duration), so lags are if anything overstated;
- RSS / PSS (peak, summed over the qcluster's processes) and their CPU seconds (/proc).

The baseline: one django-q2 task per job looping ``retrieve; sleep 1 s`` (``bench/naive.py``)
on a qcluster of the same size, with the same population. Prints a table; ``--results``
appends it to bench/RESULTS.md.
"""

import argparse
import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def counted(duration, provider_end, start, end):
    """A job counts if its provider work ended in the window early enough that its whole
    allowance fits before the window closes: then "not detected yet" is a certain miss."""
    return start <= provider_end <= end - common.allowance(duration) - 1


DIRECTIVE = re.compile(r"\[fake:duration=([0-9.]+)\]")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1000,5000,10000", help="in-flight levels")
    parser.add_argument("--window", type=float, default=210, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=20, help="seconds before the window")
    parser.add_argument("--naive-level", type=int, default=1000, help="0 skips the baseline")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-arrivals", action="store_true", help="do not top the level up")
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="the fake posts signed webhooks to a uvicorn serving Steward (production setting)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=200,
        help="completed jobs seeded as the installation's recent history (0: a new install)",
    )
    parser.add_argument("--pump-slots", type=int, default=1, help="PUMP_SLOTS for the cluster")
    parser.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    return parser.parse_args(argv)


# --- seeding ---------------------------------------------------------------------------------


def seed_steward(fake, count, rng, history):
    """Jobs, attempts and provider responses as a steady state would leave them, and
    ``history`` jobs of the same type completed in the last hour."""
    from django.db import transaction
    from django.utils import timezone

    from jobs.execution import pacing
    from jobs.job_types import get_job_type
    from jobs.models import Attempt, Job, Status

    spec = get_job_type("summarize_document")
    common.seed_history(history, rng)
    first = pacing.learned_first_look(spec.name)
    planned = common.steady_state(count, rng)
    ids = [uuid.uuid4() for _ in planned]
    pairs = zip(ids, planned, strict=True)
    bodies = [common.response_body(i, p.remaining, p.queued_left) for i, p in pairs]
    created = asyncio.run(common.create_responses(fake.base_url, bodies))
    now = timezone.now()
    jobs, attempts, ends = [], [], {}
    for job_id, plan, (response_id, sent) in zip(ids, planned, created, strict=True):
        started = datetime.fromtimestamp(sent, UTC) - timedelta(seconds=plan.age)
        running = plan.queued_left == 0
        jobs.append(
            common.bench_job(
                spec,
                document=f"Bench. [fake:duration={plan.duration}]",
                id=job_id,
                input_summary="Bench",
                status=Status.RUNNING if running else Status.QUEUED,
                expires_at=now + timedelta(minutes=45),
                next_poll_at=now + timedelta(seconds=first_poll(plan.age, first, rng)),
                started_at=started if running else None,
                created_at=started,
            )
        )
        attempts.append(
            Attempt(
                job_id=job_id,
                number=1,
                state=Attempt.State.IN_FLIGHT,
                provider_response_id=response_id,
                provider_status="in_progress" if running else "queued",
                model=spec.model,
                started_at=started,
            )
        )
        ends[str(job_id)] = (plan.duration, sent + plan.remaining)
    auto = [Job._meta.get_field("created_at"), Attempt._meta.get_field("started_at")]
    for field in auto:  # keep the backdated times the seed gives
        field.auto_now_add = False
    try:
        with transaction.atomic():
            Job.objects.bulk_create(jobs, batch_size=1000)
            Attempt.objects.bulk_create(attempts, batch_size=1000)
    finally:
        for field in auto:
            field.auto_now_add = True
    return ends


def first_poll(age, first_look, rng):
    """When Steward's pacing would next look at a job of this age: at the learned first look
    if the job is younger, else somewhere within its current backoff interval."""
    from jobs.execution import next_look

    if age < first_look:
        return next_look(age, first_look)
    return rng.uniform(0, next_look(age))


def top_up(level, rng, cap=200):
    """Submit new jobs through the real path until ``level`` jobs are active."""
    from jobs import services
    from jobs.models import ACTIVE, Job

    active = Job.objects.filter(status__in=ACTIVE).count()
    workspace, user = common.bench_user()
    for _ in range(min(cap, max(0, level - active))):
        duration = common.draw_duration(rng)
        services.submit_job(
            workspace=workspace,
            submitter=user,
            job_type="summarize_document",
            input={"title": "Bench", "document": f"Bench. [fake:duration={duration:.1f}]"},
        )
    return active


# --- measuring ---------------------------------------------------------------------------------


def read_slip(path, start, end):
    slips = []
    if not path.exists():
        return slips
    for line in path.read_text().splitlines():
        at, _, slip = line.split()[:3]
        if start <= float(at) <= end:
            slips.append(float(slip))
    return slips


def steward_detection(ends, start, end):
    """Lags (inf = not detected by the window's end) for jobs whose provider work ended in
    [start, end - TAIL]; ends of seeded jobs come from the seed, of new ones from the attempt."""
    from jobs.models import Attempt

    rows = (
        Attempt.objects.filter(number=1)
        .exclude(job__input_summary=common.HISTORY_SUMMARY)
        .values_list("job_id", "started_at", "job__input", "job__provider_finished_at")
    )
    lags = []
    for job_id, started, job_input, finished in rows:
        key = str(job_id)
        if key in ends:
            duration, provider_end = ends[key]
        else:
            duration = float(DIRECTIVE.search(job_input["document"]).group(1))
            provider_end = started.timestamp() + duration  # started_at precedes the create
        if not counted(duration, provider_end, start, end):
            continue
        seen = finished.timestamp() if finished else None
        lag = seen - provider_end if seen is not None and seen <= end else float("inf")
        lags.append((duration, lag))
    return lags


def naive_detection(log, ends, start, end):
    seen = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = line.split()
        if parts[0] == "D":
            seen[parts[2]] = float(parts[1])
    lags = []
    for key, (duration, provider_end) in ends.items():
        if not counted(duration, provider_end, start, end):
            continue
        at = seen.get(key)
        lags.append((duration, at - provider_end if at is not None and at <= end else float("inf")))
    return lags


def summarize(name, level, slips, lags, meter, window, extra):
    within = [lag <= common.allowance(d) for d, lag in lags]
    over = [lag - common.allowance(d) for d, lag in lags]
    row = {
        "name": name,
        "level": level,
        "slip_p50": common.percentile(slips, 50),
        "slip_p95": common.percentile(slips, 95),
        "slip_max": max(slips) if slips else float("nan"),
        "retrieves": len(slips),
        "lag_jobs": len(lags),
        "lag_p95": common.percentile([lag for _, lag in lags], 95),
        "lag_over_p95": common.percentile(over, 95),
        "within": sum(within) / len(within) if within else float("nan"),
        "missed": sum(1 for _, lag in lags if lag == float("inf")),
        "rss": meter.peak_rss,
        "pss": meter.peak_pss,
        "cpu": meter.cpu_seconds(),
        "processes": meter.processes,
        "window": window,
        **extra,
    }
    for label, low, high in (("30-60s", 0, 60), ("1-3min", 60, 180), ("3-10min", 180, 1e9)):
        bucket = [lag for d, lag in lags if low <= d < high]
        row[f"lag_p95_{label}"] = common.percentile(bucket, 95)
        row[f"n_{label}"] = len(bucket)
    return row


def run_window(args, cluster, level, rng, arrivals):
    """Warm up, then measure for the window; returns (start, end, meter, in-flight at both)."""
    from jobs.models import ACTIVE, Job

    deadline = time.time() + args.warmup
    while time.time() < deadline:
        if arrivals:
            top_up(level, rng)
        time.sleep(1)
    meter = common.TreeMeter(cluster.process.pid)
    start = time.time()
    active_start = Job.objects.filter(status__in=ACTIVE).count()
    last_sample = 0.0
    while time.time() < start + args.window:
        if arrivals:
            top_up(level, rng)
        if time.time() - last_sample >= 5:
            meter.sample()
            last_sample = time.time()
        time.sleep(0.5)
    end = time.time()
    meter.stop()
    active_end = Job.objects.filter(status__in=ACTIVE).count()
    return start, end, meter, (active_start, active_end)


def steward_level(args, fake, level, tmp):
    from django_q.tasks import async_task

    from tests.processes import Cluster, steward_env

    common.clean_slate()
    common.set_watchdog(True)
    fake.reset()
    rng = common.new_rng(args.seed * 7919 + level)
    slip_log = tmp / f"slip-{level}.log"
    slip_log.unlink(missing_ok=True)
    env = steward_env(
        fake.base_url,
        Q_WORKERS=args.workers,
        STEWARD_POLL_LOG=slip_log,
        PUMP_SLOTS=args.pump_slots,
        OPENAI_WEBHOOKS_ENABLED=str(args.webhooks).lower(),
    )
    # The web server is up before the seeded responses start finishing, as in production: a
    # minute of finishes queued up for it arrived as one burst of webhooks when it started.
    web = start_web(env, args.web_port) if args.webhooks else None
    t0 = time.time()
    ends = seed_steward(fake, level, rng, args.history)
    print(f"  seeded {level} in-flight jobs in {time.time() - t0:.0f} s", flush=True)
    cluster = Cluster(env).start()
    for slot in range(args.pump_slots):
        async_task("jobs.tasks.run_pump", slot, group="pump")
    fake_before = fake.stats(responses=False)["routes"].get("retrieve", 0)
    web_meter = common.TreeMeter(web.pid) if web else None
    try:
        start, end, meter, active = run_window(args, cluster, level, rng, not args.no_arrivals)
        retrieves = fake.stats(responses=False)["routes"].get("retrieve", 0) - fake_before
        if web_meter:
            web_meter.stop()
    finally:
        cluster.stop()
        if web:
            web.terminate()
            web.wait(timeout=10)
    slips = read_slip(slip_log, start, end)
    lags = steward_detection(ends, start, end)
    extra = {"in_flight": active, "provider_retrieves": retrieves}
    if web_meter:
        extra["web_cpu"] = web_meter.cpu_seconds()
    name = "Steward + webhooks" if args.webhooks else "Steward"
    if args.pump_slots > 1:
        name += f" ({args.pump_slots} pumps)"
    return summarize(name, level, slips, lags, meter, end - start, extra)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(env, port):
    """uvicorn serving Steward, for the fake's webhook deliveries."""
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
        + ["--log-level", "warning"],
        cwd=common.ROOT,
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return web
        time.sleep(0.5)
    web.kill()
    raise RuntimeError("the web server did not start")


def naive_level(args, fake, level, tmp):
    from django_q.tasks import async_task

    from tests.processes import Cluster, steward_env

    common.clean_slate()
    common.set_watchdog(False)
    fake.reset()
    rng = common.new_rng(args.seed * 7919 + level)
    planned = common.steady_state(level, rng)
    ids = [str(uuid.uuid4()) for _ in planned]
    pairs = zip(ids, planned, strict=True)
    bodies = [common.response_body(i, p.remaining, p.queued_left) for i, p in pairs]
    created = asyncio.run(common.create_responses(fake.base_url, bodies))
    log = tmp / f"naive-{level}.log"
    log.unlink(missing_ok=True)
    ends = {}
    for job_id, plan, (response_id, sent) in zip(ids, planned, created, strict=True):
        ends[job_id] = (plan.duration, sent + plan.remaining)
        async_task(
            "bench.naive.poll_until_done",
            response_id,
            job_id,
            str(log),
            fake.base_url,
            time.time(),
            group="naive",
        )
    env = steward_env(
        fake.base_url, Q_WORKERS=args.workers, DJANGO_SETTINGS_MODULE="bench.naive_settings"
    )
    cluster = Cluster(env).start()
    try:
        start, end, meter, _ = run_window(args, cluster, level, rng, arrivals=False)
    finally:
        cluster.stop()
        common.set_watchdog(True)
    slips, polled = [], set()
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = line.split()
        if parts[0] == "R" and start <= float(parts[1]) <= end:
            slips.append(float(parts[3]))
            polled.add(parts[2])
    lags = naive_detection(log, ends, start, end)
    extra = {"in_flight": (level, level), "jobs_polled": len(polled)}
    return summarize("naive 1 task/job", level, slips, lags, meter, end - start, extra)


# --- output ------------------------------------------------------------------------------------


def table(rows):
    lines = [
        "| design | in flight (start→end) | retrieves/s | slip p50 / p95 / max | "
        "detection lag p95 (all; 30-60 s; 1-3 min; 3-10 min jobs) | within max(2 s, 10 %) | "
        "missed | peak RSS (PSS) | CPU s (% of a core) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        flight = f"{r['in_flight'][0]}→{r['in_flight'][1]}"
        if "jobs_polled" in r:
            flight += f" ({r['jobs_polled']} ever polled)"
        web = f"; web server {r['web_cpu']:.0f}" if "web_cpu" in r else ""
        buckets = "; ".join(
            f"{common.fmt(r[f'lag_p95_{b}'])} (n={r[f'n_{b}']})"
            for b in ("30-60s", "1-3min", "3-10min")
        )
        lines.append(
            f"| {r['name']} @ {r['level']} | {flight} | {r['retrieves'] / r['window']:.0f} | "
            f"{common.fmt(r['slip_p50'])} / {common.fmt(r['slip_p95'])} / "
            f"{common.fmt(r['slip_max'])} | {common.fmt(r['lag_p95'])}; {buckets} | "
            f"{r['within']:.1%} of {r['lag_jobs']} | {r['missed']} | {common.mb(r['rss'])} "
            f"({common.mb(r['pss'])}, {r['processes']} procs) | {r['cpu']:.0f} "
            f"({r['cpu'] / r['window']:.0%}){web} |"
        )
    return "\n".join(lines)


def verdict(rows):
    best = [r for r in rows if r["name"].startswith("Steward")]
    if not best:
        return ""
    top = max(best, key=lambda r: r["level"])
    checks = [
        ("slip p95 ≤ 1 s", top["slip_p95"] <= 1.0),
        ("detection lag p95 ≤ max(2 s, 10 % of duration)", top["lag_over_p95"] <= 0),
        ("RSS ≤ 300 MB", top["rss"] <= 300 * 2**20),
    ]
    return f"Targets at {top['level']} in flight: " + "; ".join(
        f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks
    )


def main(argv=None):
    args = parse_args(argv)
    if args.webhooks:  # the seed's next poll times follow the webhook-mode policy too
        os.environ["OPENAI_WEBHOOKS_ENABLED"] = "true"
    common.setup_django()
    from django.conf import settings

    from fake_openai.testing import FakeServer

    tmp = Path("/tmp/steward-bench")
    tmp.mkdir(exist_ok=True)
    levels = [int(x) for x in args.levels.split(",") if x]
    started_text, load_before = common.utc_now_text(), common.machine_notes()
    rows = []
    hooks = {}
    if args.webhooks:
        args.web_port = free_port()
        hooks = dict(
            webhook_url=f"http://127.0.0.1:{args.web_port}/webhooks/openai/",
            webhook_secret=settings.OPENAI_WEBHOOK_SECRET,
        )
    with FakeServer(seed=args.seed, **hooks) as fake:
        fake_meter = common.TreeMeter(fake.process.pid)
        if args.naive_level:
            print(f"naive baseline @ {args.naive_level} …", flush=True)
            rows.append(naive_level(args, fake, args.naive_level, tmp))
            print(table(rows[-1:]), flush=True)
        for level in levels:
            print(f"Steward @ {level} …", flush=True)
            rows.append(steward_level(args, fake, level, tmp))
            print(table(rows[-1:]), flush=True)
        fake_cpu = fake_meter.cpu_seconds()
    common.clean_slate()
    report = "\n".join(
        [
            f"Run started {started_text}; window {args.window:.0f} s per level after a "
            f"{args.warmup:.0f} s warm-up; Q_WORKERS={args.workers}; PUMP_SLOTS="
            f"{args.pump_slots}; webhooks {'on' if args.webhooks else 'off'}; seed {args.seed}; "
            f"{args.history} completed jobs of history seeded per level.",
            f"Machine: {load_before} at start, {common.machine_notes()} at the end; "
            f"the fake server used {fake_cpu:.0f} CPU s.",
            "",
            table(rows),
            "",
            verdict(rows),
        ]
    )
    print("\n" + report)
    if args.results:
        common.append_results("p1_inflight.py", "P1 run", report, argv)


if __name__ == "__main__":
    main()
