"""P2: provider retrieves per completed job — Steward's backoff polling, Steward with webhooks,
and fixed 1 s polling (the naive loop of bench/naive.py), all in the same run.

    python bench/p2_retrieves.py --jobs 120 --scale 1.0

The same N durations, spread evenly over 30 s–10 min (times ``--scale``), run three ways at
once, each against its own fake OpenAI server so the fake's per-response counts
(``/_fake/stats``) belong to one design only:

- fixed: N threads in this process, each looping ``retrieve; sleep 1 s`` until terminal;
- Steward: ``submit_job`` → a real qcluster (Q_WORKERS=2), no webhooks (database steward_bench);
- Steward + webhooks: the fake signs and posts webhooks to a uvicorn running
  ``config.asgi:application``; ``OPENAI_WEBHOOKS_ENABLED=true`` (database steward_bench_wh).

Each Steward variant runs in a child process of this script (``--child``) with its own
DATABASE_URL and cluster name. Prints retrieves per completed job and the detection lag.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

WH_DB = "postgres://postgres@127.0.0.1:5432/steward_bench_wh"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=120, help="jobs per design")
    parser.add_argument("--scale", type=float, default=1.0, help="duration scale factor")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--history",
        type=int,
        default=200,
        help="completed jobs seeded as each Steward installation's recent history (0: new)",
    )
    parser.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--child", choices=["polling", "webhooks"], help=argparse.SUPPRESS)
    parser.add_argument("--fake-url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def durations(count, scale):
    span = common.MAX_DURATION - common.MIN_DURATION
    return [(common.MIN_DURATION + span * (i + 0.5) / count) * scale for i in range(count)]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- a Steward variant (child process) -------------------------------------------------------


def child(args):
    """Submit the jobs through the real path, run a cluster until all are done, print JSON."""
    common.setup_django()
    from django.conf import settings
    from django_q.tasks import async_task

    from jobs import services
    from jobs.models import ACTIVE, Attempt, Job, PumpSlot
    from tests.processes import Cluster, steward_env

    common.clean_slate(redis_too=False)
    common.seed_history(args.history, random.Random(args.seed), scale=args.scale)
    common.set_watchdog(True)
    webhooks = args.child == "webhooks"
    extra = {"Q_WORKERS": 2, "OPENAI_WEBHOOKS_ENABLED": str(webhooks).lower()}
    env = steward_env(args.fake_url, **extra)
    workspace, user = common.bench_user()
    web = None
    if webhooks:
        port = int(os.environ["BENCH_WEB_PORT"])
        web = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)]
            + ["--log-level", "warning"],
            cwd=common.ROOT,
            env=env,
        )
    cluster = Cluster(env).start()
    async_task("jobs.tasks.run_pump", 0, group="pump")
    ready = time.time() + 60  # submit once the pump beats and the webhook endpoint answers
    while time.time() < ready and not PumpSlot.objects.exclude(heartbeat_at=None).exists():
        time.sleep(0.5)
    while web and time.time() < ready:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            break
        time.sleep(0.5)
    planned = durations(args.jobs, args.scale)
    jobs = [
        services.submit_job(
            workspace=workspace,
            submitter=user,
            job_type="summarize_document",
            input={"title": "P2", "document": f"P2 document. [fake:duration={d:.2f}]"},
        )
        for d in planned
    ]
    deadline = time.time() + max(planned) + 180
    try:
        while time.time() < deadline and Job.objects.filter(status__in=ACTIVE).exists():
            time.sleep(2)
    finally:
        cluster.stop()
        if web:
            web.terminate()
            web.wait(timeout=10)
    out = []
    for job, duration in zip(jobs, planned, strict=True):
        job = Job.objects.get(pk=job.pk)
        attempts = list(Attempt.objects.filter(job=job).order_by("number"))
        lag = None
        if job.provider_finished_at and attempts:
            lag = job.provider_finished_at.timestamp() - (
                attempts[-1].started_at.timestamp() + duration
            )
        out.append(
            {
                "duration": duration,
                "status": job.status,
                "responses": [a.provider_response_id for a in attempts if a.provider_response_id],
                "lag": lag,
            }
        )
    result = {"jobs": out, "webhook_setting": settings.WEBHOOK_SAFETY_POLL_SECONDS}
    print("P2-RESULT " + json.dumps(result))


# --- the parent ------------------------------------------------------------------------------


def fixed_polling(fake, planned, log):
    """The naive loop in one thread per job (same code as the P1 baseline's task)."""
    from bench.naive import poll_until_done

    ids = [str(uuid.uuid4()) for _ in planned]
    bodies = [
        common.response_body(i, d, 0.2 * d, "P2 document.")
        for i, d in zip(ids, planned, strict=True)
    ]
    created = asyncio.run(common.create_responses(fake.base_url, bodies))
    threads, ends = [], {}
    for job_id, duration, (response_id, sent) in zip(ids, planned, created, strict=True):
        ends[job_id] = (duration, sent + duration, response_id)
        thread = threading.Thread(
            target=poll_until_done,
            args=(response_id, job_id, str(log), fake.base_url, time.time()),
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads, ends


def run_child(mode, args, fake, env_extra):
    env = dict(os.environ, **env_extra)
    command = [sys.executable, __file__, "--child", mode, "--fake-url", fake.base_url]
    command += ["--jobs", str(args.jobs), "--scale", str(args.scale), "--seed", str(args.seed)]
    command += ["--history", str(args.history)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def child_result(process):
    stdout, _ = process.communicate()
    for line in stdout.splitlines():
        if line.startswith("P2-RESULT "):
            return json.loads(line[len("P2-RESULT ") :])
    raise RuntimeError(f"child failed (exit {process.returncode})")


def figures(name, jobs, per_response):
    done = [j for j in jobs if j["status"] in ("completed", "needs_review")]
    retrieves = [
        sum(per_response.get(r, {}).get("retrieve", 0) for r in j["responses"]) for j in done
    ]
    lags = [j["lag"] for j in done if j["lag"] is not None]
    return {
        "name": name,
        "jobs": len(jobs),
        "completed": len(done),
        "retrieves": sum(retrieves),
        "per_job": sum(retrieves) / len(done) if done else float("nan"),
        "max": max(retrieves) if retrieves else 0,
        "lag_p50": common.percentile(lags, 50),
        "lag_p95": common.percentile(lags, 95),
        "within": sum(
            j["lag"] is not None and j["lag"] <= common.allowance(j["duration"]) for j in done
        )
        / len(done)
        if done
        else float("nan"),
    }


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    common.setup_django()
    from django.conf import settings

    from fake_openai.testing import FakeServer

    common.prepare_database(WH_DB)
    common.clean_slate()  # also empties the shared Redis db before both clusters start
    started_text, load_before = common.utc_now_text(), common.machine_notes()
    planned = durations(args.jobs, args.scale)
    port = free_port()
    log = Path("/tmp/steward-bench/p2-fixed.log")
    log.parent.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    with (
        FakeServer(seed=args.seed) as plain_fake,
        FakeServer(
            seed=args.seed,
            webhook_url=f"http://127.0.0.1:{port}/webhooks/openai/",
            webhook_secret=settings.OPENAI_WEBHOOK_SECRET,
        ) as hook_fake,
        FakeServer(seed=args.seed) as fixed_fake,
    ):
        polling = run_child("polling", args, plain_fake, {})
        hooked = run_child(
            "webhooks",
            args,
            hook_fake,
            {
                "DATABASE_URL": WH_DB,
                "Q_CLUSTER_NAME": "steward-bench-wh",
                "CACHE_KEY_PREFIX": "steward-bench-wh",
                "BENCH_WEB_PORT": str(port),
            },
        )
        threads, ends = fixed_polling(fixed_fake, planned, log)
        steward_jobs = child_result(polling)["jobs"]
        hooked_result = child_result(hooked)
        for thread in threads:
            thread.join(timeout=60)
        detected = {}
        for line in log.read_text().splitlines():
            parts = line.split()
            if parts[0] == "D":
                detected[parts[2]] = float(parts[1])
        fixed_jobs = [
            {
                "duration": duration,
                "status": "completed" if job_id in detected else "running",
                "responses": [response_id],
                "lag": detected[job_id] - end if job_id in detected else None,
            }
            for job_id, (duration, end, response_id) in ends.items()
        ]
        rows = [
            figures("fixed 1 s polling (naive)", fixed_jobs, fixed_fake.stats()["responses"]),
            figures("Steward backoff polling", steward_jobs, plain_fake.stats()["responses"]),
            figures("Steward + webhooks", hooked_result["jobs"], hook_fake.stats()["responses"]),
        ]
        deliveries = hook_fake.webhooks()
    common.clean_slate()
    fixed = rows[0]["per_job"]
    lines = [
        f"Run started {started_text}; {args.jobs} jobs per design, durations evenly spread over "
        f"{common.MIN_DURATION * args.scale:.0f}–{common.MAX_DURATION * args.scale:.0f} s "
        f"(scale {args.scale}); Q_WORKERS=2 per Steward cluster; "
        f"WEBHOOK_SAFETY_POLL_SECONDS={hooked_result['webhook_setting']:.0f}; "
        f"{args.history} completed jobs of history seeded per Steward database.",
        f"Machine: {load_before} at start, {common.machine_notes()} at the end. Webhook "
        f"deliveries: {sum(d['outcome'] == 'delivered' for d in deliveries)} delivered of "
        f"{len(deliveries)} attempts.",
        "",
        "| design | completed | retrieves per completed job (max) | vs fixed 1 s | "
        "detection lag p50 / p95 | within max(2 s, 10 %) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['completed']}/{r['jobs']} | {r['per_job']:.2f} ({r['max']}) | "
            f"{r['per_job'] / fixed:.3f} | {common.fmt(r['lag_p50'])} / "
            f"{common.fmt(r['lag_p95'])} | {r['within']:.1%} |"
        )
    ratio, hooked_per_job = rows[1]["per_job"] / fixed, rows[2]["per_job"]
    lines += [
        "",
        f"Targets: without webhooks ≤ 1/10 of fixed polling: {ratio:.3f} → "
        f"{'met' if ratio <= 0.1 else 'MISSED'}; with webhooks ≤ 1.2 per job: "
        f"{hooked_per_job:.2f} → {'met' if hooked_per_job <= 1.2 else 'MISSED'}.",
    ]
    report = "\n".join(lines)
    print(report)
    if args.results:
        common.append_results("p2_retrieves.py", "P2 run", report, argv)


if __name__ == "__main__":
    main()
