"""P4: requests/s and latency of ``POST /api/v1/jobs``, against a bare DRF view inserting one row.

    python bench/p4_api_submit.py --concurrency 32 --seconds 15 --warmup 5 --rounds 3

Two uvicorn servers run side by side with the same settings (``--workers`` processes each,
DEBUG off, PostgreSQL, Redis cache and broker, Steward's middleware):

- Steward: ``config.settings``, the real endpoint: bearer token auth (the token's last-use
  check), both throttles (counts in Redis), input validation, ``submit_job`` (job row, one
  ``submitted`` event, an Idempotency-Key lookup) and, on commit, the dispatch task pushed
  onto the django-q2 Redis broker. No qcluster runs: the enqueue cost is counted, but no
  worker competes for the CPU, and the tasks are left in Redis (and flushed at the end).
  The throttle rates are raised to per-second limits far above the load (``THROTTLE``) so
  nothing is refused and each rate's history stays about as long as under the default rates.
- baseline: ``bench.p4_settings`` (only ``ROOT_URLCONF`` differs) serving
  ``bench.p4_baseline``: an APIView without auth, throttles or serializer that inserts one
  ``jobs_job`` row with the required fields.

Every round runs the load generator (``bench/loadgen.py``, its own process: ``concurrency``
keep-alive clients in a closed loop, each request with its own Idempotency-Key) against
Steward and then against the baseline, ``warmup`` seconds unmeasured then ``seconds``
measured; figures are medians over the rounds. Rows are counted before and after each run:
every 2xx must have made exactly one job row. Prints a markdown section; ``--results``
appends it to bench/RESULTS.md.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

THROTTLE = "100000/s"
BODY = {
    "job_type": "summarize_document",
    "input": {"title": "Bench", "document": "Revenue grew 4 % while costs fell. [bench p4]"},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--port", type=int, default=8461, help="Steward; baseline is port+1")
    parser.add_argument(
        "--profile", type=int, default=300, help="in-process profiled requests (0: none)"
    )
    parser.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    return parser.parse_args(argv)


class Server:
    """``uvicorn config.asgi:application`` in its own process group."""

    def __init__(self, name, port, workers, env):
        self.name, self.port, self.workers, self.env = name, port, workers, env
        self.process = None

    def start(self):
        log = open(f"/tmp/wt-bench45-p4-{self.name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=common.ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError(f"{self.name} server did not start; see {log.name}")
        time.sleep(2)  # the workers import Django after the socket opens
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)


def server_env(settings_module, workspace, user):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DEBUG="false",
        PYTHONPATH=str(common.ROOT),
        LOG_LEVEL="WARNING",
        API_THROTTLE_USER=THROTTLE,
        API_THROTTLE_TOKEN=THROTTLE,
        BENCH_WORKSPACE_ID=str(workspace.pk),
        BENCH_USER_ID=str(user.pk),
    )
    for key in ("DATABASE_URL", "REDIS_URL", "Q_CLUSTER_NAME", "CACHE_KEY_PREFIX"):
        if key in os.environ or key in common.DEFAULT_ENV:
            env[key] = os.environ.get(key, common.DEFAULT_ENV.get(key, ""))
    env.pop("OPENAI_API_KEY", None)
    return env


def load(args, url, headers, prefix):
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("loadgen.py")),
        "--url",
        url,
        "--body",
        json.dumps(BODY),
        "--concurrency",
        str(args.concurrency),
        "--warmup",
        str(args.warmup),
        "--seconds",
        str(args.seconds),
        "--idempotency-prefix",
        prefix,
    ]
    for header in headers:
        cmd += ["--header", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def one_run(args, server, url, headers, prefix):
    from jobs.models import Job

    before = Job.objects.count()
    meter = common.TreeMeter(server.process.pid)
    figures = load(args, url, headers, prefix)
    meter.stop()
    figures["server_cpu"] = meter.cpu_seconds()
    figures["rows"] = Job.objects.count() - before
    return figures


def queued_dispatch_tasks():
    import redis
    from django.conf import settings

    name = settings.Q_CLUSTER["name"]
    return redis.Redis.from_url(settings.REDIS_URL).llen(f"django_q:{name}:q")


# --- where the time goes (in process, Django's test client) -----------------------------------

WATCH = [  # (label, file suffix, function name): cumulative time per submit
    ("new DB connection", "django/db/backends/base/base.py", "connect"),
    ("token auth", "accounts/authentication.py", "authenticate"),
    ("throttles", "rest_framework/views.py", "check_throttles"),
    ("submit serializer is_valid", "rest_framework/serializers.py", "is_valid"),
    ("submit_job", "jobs/services/submission.py", "submit_job"),
    ("of which dispatch enqueue (async_task)", "django_q/tasks.py", "async_task"),
    ("sync-lane start", "jobs/execution/lanes.py", "run_sync"),
    ("answer serializer .data", "rest_framework/serializers.py", "data"),
]


def _area(filename):
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if str(common.ROOT) in filename:
        return "steward:" + filename.split(str(common.ROOT) + "/", 1)[1].split("/", 1)[0]
    if filename == "~":
        return "builtins (socket waits included)"
    return "python stdlib"


def profile_in_process(count, secret, workspace, user):
    """Queries per request for both designs, and a cProfile of ``count`` Steward submits
    grouped by package (own wall time: psycopg's includes waiting for PostgreSQL), through
    Django's test client (no server; it keeps the database connection across requests, so
    the per-request connect the servers pay is not in the profile)."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    client = Client(headers={"Authorization": f"Bearer {secret}"})

    def steward(number):
        answer = client.post(
            "/api/v1/jobs",
            BODY,
            content_type="application/json",
            headers={"Idempotency-Key": f"p4-profile-{time.time()}-{number}"},
        )
        assert answer.status_code == 201, answer.content

    os.environ.update(BENCH_WORKSPACE_ID=str(workspace.pk), BENCH_USER_ID=str(user.pk))
    steward(-1)  # warm
    steward_queries, baseline_queries = [], []

    def recorder(into):
        def record(execute, sql, params, many, context):
            into.append(sql)
            return execute(sql, params, many, context)

        return record

    with connection.execute_wrapper(recorder(steward_queries)):
        steward(-2)
    with override_settings(ROOT_URLCONF="bench.p4_baseline"):
        Client().post("/bench/jobs", BODY, content_type="application/json")
        with connection.execute_wrapper(recorder(baseline_queries)):
            Client().post("/bench/jobs", BODY, content_type="application/json")
    profiler = cProfile.Profile()
    started = time.process_time()
    profiler.enable()
    for number in range(count):
        steward(number)
    profiler.disable()
    cpu = time.process_time() - started
    stats = pstats.Stats(profiler)
    areas = {}
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():
        areas[_area(filename)] = areas.get(_area(filename), 0.0) + own
    total = sum(areas.values())
    top = sorted(areas.items(), key=lambda kv: -kv[1])[:8]
    cumulative = {}
    for (filename, _, func), (_, _, _, cum, _) in stats.stats.items():
        for label, suffix, name in WATCH:
            if filename.endswith(suffix) and func == name:
                cumulative[label] = max(cumulative.get(label, 0.0), cum)  # nested: outermost
    return {
        "count": count,
        "cpu_ms": cpu / count * 1000,
        "steward_queries": steward_queries,
        "baseline_queries": baseline_queries,
        "areas": [(name, own / total) for name, own in top],
        "cumulative": {k: cumulative[k] / count * 1000 for k, _, _ in WATCH if k in cumulative},
    }


def profile_text(found):
    kinds = {}
    for sql in found["steward_queries"]:
        word = sql.split()[0].upper()
        kinds[word] = kinds.get(word, 0) + 1
    areas = ", ".join(f"{name} {share:.0%}" for name, share in found["areas"])
    parts = "; ".join(f"{label} {ms:.1f} ms" for label, ms in found["cumulative"].items())
    return "\n".join(
        [
            f"Where Steward's time goes (in process, Django test client, {found['count']} "
            f"profiled submits under cProfile, which inflates Python time; wall-clock shares): "
            f"{found['cpu_ms']:.1f} ms CPU per submit in the profiled process.",
            f"- SQL statements per request: Steward {len(found['steward_queries'])} "
            f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), baseline "
            f"{len(found['baseline_queries'])}.",
            *[f"  - `{' '.join(sql.split())[:110]}`" for sql in found["steward_queries"]],
            f"- own time by package: {areas}.",
            f"- cumulative per submit: {parts}.",
        ]
    )


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def cpu(runs, key):
    """Median CPU seconds of one run and their share of the run's wall time (one core = 100 %)."""
    return f"{med(runs, key):.1f} s ({med(runs, key) / med(runs, 'elapsed'):.0%})"


def table(results, args):
    lines = [
        "| design | req/s (2xx) | p50 | p99 | 2xx / other in window | rows = 2xx? | "
        "server CPU (% of run) | client CPU (% of run) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        other = sum(
            sum(n for s, n in r["window_statuses"].items() if not 200 <= int(s) < 300) for r in runs
        )
        ok = sum(
            sum(n for s, n in r["window_statuses"].items() if 200 <= int(s) < 300) for r in runs
        )
        rows_ok = all(r["rows"] == r["ok_total"] for r in runs)
        rows = sum(r["rows"] for r in runs)
        ok_total = sum(r["ok_total"] for r in runs)
        lines.append(
            f"| {name} | {med(runs, 'ok_per_s'):,.0f} | {med(runs, 'p50_ms'):.1f} ms | "
            f"{med(runs, 'p99_ms'):.1f} ms | {ok} / {other + sum(r['errors'] for r in runs)} | "
            f"{'yes' if rows_ok else 'NO'} ({rows} rows, {ok_total} 2xx) | "
            f"{cpu(runs, 'server_cpu')} | {cpu(runs, 'client_cpu')} |"
        )
    return "\n".join(lines)


def per_request(runs):
    return statistics.median(r["server_cpu"] / r["ok_total"] * 1000 for r in runs if r["ok_total"])


def verdict(ok):
    return "met" if ok else "MISSED"


def report(results, args, notes):
    steward, baseline = results["Steward POST /api/v1/jobs"], results["baseline bare DRF insert"]
    ratio = med(steward, "ok_per_s") / med(baseline, "ok_per_s")
    p99 = med(steward, "p99_ms")
    rounds = ", ".join(
        f"{s['ok_per_s']:,.0f}/{b['ok_per_s']:,.0f}" for s, b in zip(steward, baseline, strict=True)
    )
    little = args.concurrency / med(steward, "ok_per_s") * 1000
    return "\n".join(
        [
            f"Run started {notes['started']}; {args.rounds} rounds of Steward then baseline, each "
            f"{args.warmup:.0f} s warm-up + {args.seconds:.0f} s measured; {args.concurrency} "
            f"closed-loop keep-alive clients (bench/loadgen.py, one process); uvicorn "
            f"--workers {args.workers}, DEBUG off, PostgreSQL, Redis cache + broker, no qcluster "
            f"(dispatch tasks enqueued in Redis, never run: {notes['queued']} left at the end, "
            f"flushed).",
            f"Machine: {notes['load_before']} at start, {notes['load_after']} at the end.",
            "",
            table(results, args),
            "",
            f"Rounds (Steward/baseline req/s): {rounds}; medians shown. Server CPU per 2xx "
            f"(whole run, warm-up included): Steward {per_request(steward):.1f} ms, baseline "
            f"{per_request(baseline):.1f} ms.",
            "",
            f"Steward / baseline: {ratio:.0%} (target ≥ 60 %: {verdict(ratio >= 0.6)}); "
            f"Steward p99 {p99:.1f} ms (target ≤ 50 ms: {verdict(p99 <= 50)}).",
            "",
            "How to read: req/s counts 2xx answers completed inside the measured window; p50/p99 "
            "are per-request latencies seen by the client (queueing in the server included). "
            "The load is closed-loop, so by Little's law mean latency ≈ clients / throughput "
            f"({args.concurrency} / {med(steward, 'ok_per_s'):,.0f} req/s ≈ {little:.0f} ms for "
            "Steward): a p99 under 50 ms at 32 clients needs well over 640 req/s. Server CPU is "
            "the uvicorn process tree's (both cores = 200 %); PostgreSQL's and Redis's CPU is "
            "not in it. rows = 2xx compares job rows added per run (warm-up included) with the "
            "2xx answers the client saw.",
        ]
    )


def main(argv=None):
    args = parse_args(argv)
    os.environ.update(DEBUG="false", API_THROTTLE_USER=THROTTLE, API_THROTTLE_TOKEN=THROTTLE)
    common.setup_django()
    from accounts.services import create_api_token

    notes = {"started": common.utc_now_text(), "load_before": common.machine_notes()}
    common.clean_slate()
    workspace, user = common.bench_user()
    _, secret = create_api_token(user=user, name="p4 bench")
    servers = {
        "Steward POST /api/v1/jobs": (
            Server(
                "steward", args.port, args.workers, server_env("config.settings", workspace, user)
            ),
            f"http://127.0.0.1:{args.port}/api/v1/jobs",
            [f"Authorization: Bearer {secret}"],
        ),
        "baseline bare DRF insert": (
            Server(
                "baseline",
                args.port + 1,
                args.workers,
                server_env("bench.p4_settings", workspace, user),
            ),
            f"http://127.0.0.1:{args.port + 1}/bench/jobs",
            [],
        ),
    }
    results = {name: [] for name in servers}
    stamp = int(time.time())
    try:
        for server, _, _ in servers.values():
            server.start()
        for number in range(args.rounds):
            for name, (server, url, headers) in servers.items():
                print(f"round {number + 1}: {name} …", flush=True)
                figures = one_run(args, server, url, headers, f"p4-{stamp}-{number}-{server.name}")
                results[name].append(figures)
                print(
                    f"  {figures['ok_per_s']:,.0f} req/s, p50 {figures['p50_ms']:.1f} ms, "
                    f"p99 {figures['p99_ms']:.1f} ms, statuses {figures['statuses']}, "
                    f"rows {figures['rows']}",
                    flush=True,
                )
    finally:
        for server, _, _ in servers.values():
            server.stop()
    notes["queued"] = queued_dispatch_tasks()
    notes["load_after"] = common.machine_notes()
    text = report(results, args, notes)
    if args.profile:
        print(f"profiling {args.profile} submits in process …", flush=True)
        text += "\n\n" + profile_text(profile_in_process(args.profile, secret, workspace, user))
    common.clean_slate()
    print("\n" + text)
    if args.results:
        common.append_results("p4_api_submit.py", "P4 API submit", text, argv)


if __name__ == "__main__":
    main()
