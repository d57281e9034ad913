"""P8: tool runs: three-step runs with read-only tools through one qcluster, webhooks on.

    python bench/p8_tool_runs.py --runs 1000 --rates 0,10

Each run is the demo's "Answer a question about an order" (``answer_order_question``): the
model looks the order up (step 1), tracks its parcel (step 2), then answers (step 3). Both tools
are read-only, so nothing waits for a person and the job completes without review. Every
response of the run takes ``--duration`` seconds at the bundled fake, which posts a signed
webhook when it ends.

Steward runs as it does in production: PostgreSQL, the Redis broker, one qcluster
(``Q_WORKERS=2``) with the pump and its watchdog, uvicorn serving ``config.asgi`` for the
webhooks. This process submits the runs through ``services.submit_job``: all at once
(rate 0) or at a steady rate (runs per second), one pass per rate in ``--rates``.

Figures per pass:

- completed runs/s: runs / (the last ``completed_at`` − the first submit);
- provider calls per run: creates and retrieves the fake answered, divided by the runs;
- Steward's overhead per step: the fake's clock at the create of step n+1 minus the end of
  step n (``/_fake/stats?timing=1``), two per run; split into *seen* (the end until Steward
  recorded the step: webhook, retrieve, record) and *tools + create* (from there until the
  continuation's create reached the fake: the tool tasks, then the create). Target: p95 ≤ 1 s;
- the cluster's CPU seconds and peak RSS (its process tree), and the machine's calibration.

Prints a markdown section; ``--results`` appends it to bench/RESULTS.md.
"""

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.p2_retrieves import free_port  # noqa: E402

JOB_TYPE = "answer_order_question"
ORDERS = ("A-1042", "A-1043", "A-1044")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs submitted per pass")
    parser.add_argument(
        "--rates", default="0,10", help="submit rates in runs/s, one pass each (0: all at once)"
    )
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per response")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pass at most")
    parser.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    return parser.parse_args(argv)


def wait_until(predicate, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def submit(workspace, user, number, duration):
    from jobs import services

    return services.submit_job(
        workspace=workspace,
        submitter=user,
        job_type=JOB_TYPE,
        input={
            "order_reference": ORDERS[number % len(ORDERS)],
            "question": f"Where is my parcel? (run {number}) [fake:duration={duration:g}]",
        },
    )


def one_pass(args, rate, fake, env):
    """Submit ``args.runs`` runs at ``rate`` and wait for them; the pass's raw figures."""
    from django_q.tasks import async_task

    from jobs.models import ACTIVE, Job, PumpSlot, RunStep, Status
    from tests.processes import Cluster

    common.clean_slate()
    common.set_watchdog(True)
    fake.reset()
    workspace, user = common.bench_user()
    port = int(env["BENCH_WEB_PORT"])
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
        + ["--log-level", "warning"],
        cwd=common.ROOT,
        env=env,
    )
    cluster = Cluster(env).start()
    try:
        async_task("jobs.tasks.run_pump", 0, group="pump")
        set_up = time.monotonic()
        ready = PumpSlot.objects.exclude(heartbeat_at=None).exists
        if not wait_until(ready, 60):
            raise RuntimeError("the pump did not start; see var/test-logs")

        def answering():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        if not wait_until(answering, 60):
            raise RuntimeError("uvicorn did not answer")
        warm = submit(workspace, user, 0, args.duration)
        if not wait_until(Job.objects.filter(pk=warm.pk, status=Status.COMPLETED).exists, 120):
            raise RuntimeError("the warm-up run did not complete; see var/test-logs")
        set_up = time.monotonic() - set_up
        Job.objects.filter(pk=warm.pk).delete()
        fake.reset()
        meter = common.TreeMeter(cluster.process.pid)
        first = time.time()
        for number in range(args.runs):
            if rate:
                pause = first + number / rate - time.time()
                if pause > 0:
                    time.sleep(pause)
            submit(workspace, user, number + 1, args.duration)
        submitted = time.time() - first

        def all_done():
            meter.sample()
            return not Job.objects.filter(status__in=ACTIVE).exists()

        finished = wait_until(all_done, max(args.timeout - submitted, 1), 1.0)
        meter.stop()
        stats = fake.stats(timing=True)
        deliveries = fake.webhooks()
    finally:
        cluster.stop()
        web.terminate()
        web.wait(timeout=30)
    jobs = Job.objects.filter(job_type=JOB_TYPE)
    statuses = {}
    for status in jobs.values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    done = list(jobs.filter(status=Status.COMPLETED).values_list("completed_at", flat=True))
    steps = {}
    for job_id, number, response_id, seen in RunStep.objects.values_list(
        "job_id", "number", "response_id", "finished_at"
    ):
        steps.setdefault(job_id, {})[number] = (response_id, seen)
    timing = stats["timing"]
    overhead, seen_lag, onward = [], [], []
    for run in steps.values():
        for number in sorted(run):
            if number + 1 not in run:
                continue
            this, after = timing.get(run[number][0]), timing.get(run[number + 1][0])
            if this is None or after is None or run[number][1] is None:
                continue
            overhead.append(after["created"] - this["ends"])
            seen_lag.append(run[number][1].timestamp() - this["ends"])
            onward.append(after["created"] - run[number][1].timestamp())
    return {
        "rate": rate,
        "runs": args.runs,
        "set_up": set_up,
        "submitted": submitted,
        "finished": finished,
        "completed": len(done),
        "statuses": statuses,
        "span": (max(done).timestamp() - first) if done else float("nan"),
        "steps": sum(len(run) for run in steps.values()),
        "routes": stats["routes"],
        "overhead": overhead,
        "seen": seen_lag,
        "onward": onward,
        "cpu": meter.cpu_seconds(),
        "rss": meter.peak_rss,
        "webhooks": (sum(d["outcome"] == "delivered" for d in deliveries), len(deliveries)),
    }


def row(r):
    creates, retrieves = r["routes"].get("create", 0), r["routes"].get("retrieve", 0)
    runs = max(r["completed"], 1)
    pct = common.percentile
    rate = f"{r['rate']:g}/s" if r["rate"] else "all at once"
    return (
        f"| {rate} | {r['completed']}/{r['runs']} | {r['completed'] / r['span']:.1f} | "
        f"{r['steps'] / runs:.2f} | {creates / runs:.2f} + {retrieves / runs:.2f} | "
        f"{common.fmt(pct(r['overhead'], 50))} / {common.fmt(pct(r['overhead'], 95))} / "
        f"{common.fmt(max(r['overhead'], default=float('nan')))} | "
        f"{common.fmt(pct(r['seen'], 95))} + {common.fmt(pct(r['onward'], 95))} | "
        f"{r['cpu']:.0f} s | {common.mb(r['rss'])} |"
    )


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("OPENAI_WEBHOOKS_ENABLED", "true")
    common.setup_django()
    from django.conf import settings

    from fake_openai.testing import FakeServer
    from tests.processes import steward_env

    rates = [float(rate) for rate in args.rates.split(",")]
    started_text, load_before = common.utc_now_text(), common.machine_notes()
    port = free_port()
    results = []
    with FakeServer(
        seed=1,
        retention_seconds=7200,
        webhook_url=f"http://127.0.0.1:{port}/webhooks/openai/",
        webhook_secret=settings.OPENAI_WEBHOOK_SECRET,
    ) as fake:
        env = steward_env(
            fake.base_url,
            Q_WORKERS=args.workers,
            OPENAI_WEBHOOKS_ENABLED="true",
            BENCH_WEB_PORT=port,
        )
        for rate in rates:
            results.append(one_pass(args, rate, fake, env))
    common.clean_slate()
    lines = [
        f"Run started {started_text}; {args.runs} runs of `{JOB_TYPE}` per pass (3 responses "
        f"each, {args.duration:g} s apiece at the fake; 2 read-only tool calls); one qcluster, "
        f"Q_WORKERS={args.workers}; webhooks on; PostgreSQL and Redis local.",
        f"Machine: {load_before} at start, {common.machine_notes()} at the end. Set-up per "
        "pass (cluster and uvicorn start, one warm-up run): "
        + ", ".join(f"{r['set_up']:.0f} s" for r in results)
        + ". Webhook deliveries per pass (delivered of the last attempts, the fake keeps "
        "2,000): " + ", ".join(f"{r['webhooks'][0]} of {r['webhooks'][1]}" for r in results) + ".",
        "",
        "| submitted | completed | runs/s | steps per run | provider calls per run "
        "(creates + retrieves) | overhead per step p50 / p95 / max | p95 of seen + tools and "
        "create | cluster CPU | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [row(r) for r in results]
    lines.append("")
    for r in results:
        p95 = common.percentile(r["overhead"], 95)
        lines.append(
            f"Target ({r['rate']:g}/s): overhead per step p95 ≤ 1 s: {common.fmt(p95)} → "
            f"{'met' if p95 <= 1.0 else 'MISSED'}; statuses {r['statuses']}; "
            f"{len(r['overhead'])} continuations timed; submitting took {r['submitted']:.1f} s."
        )
    report = "\n".join(lines)
    print(report)
    if args.results:
        common.append_results("p8_tool_runs.py", "P8 tool runs", report, argv)


if __name__ == "__main__":
    main()
