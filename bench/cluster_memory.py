"""Where the worker cluster's memory goes: each process's RSS (anonymous / file-backed) and PSS,
and the sum the P1 target counts (RSS summed over the ``run_workers`` process tree).

    python bench/cluster_memory.py --jobs 300 [--in-flight 10000]

Starts the cluster as tests/processes.py does (``manage.py run_workers``, Q_WORKERS=2) against
the fake OpenAI server, on its own database, Redis db and queue name (DEFAULTS below), and
takes three snapshots:

- *started*: the processes as forked, before any task ran (what each one pays up front);
- *peak under load*: each process's highest RSS while the pump runs and ``--jobs`` jobs
  submitted through ``submit_job`` (background, sync and stream lanes; the fake finishes each
  in a few seconds) are dispatched, polled and finished, sampled every second. With
  ``--in-flight N`` the pump also tracks N long background jobs seeded before the cluster
  starts (as bench/p1_inflight.py seeds them: real responses at the fake, rows written
  directly);
- *settled*: a few seconds after the last of them finished.

The sum row of each table is the P1 figure. Forked children count the pages they share with
their parent in their own RSS, so what the sentinel loads before it forks is counted once per
process; PSS shares those pages out. Roles come from django-q2's cluster status (the workers'
pids); the root is ``run_workers`` itself, which is the sentinel and runs the pusher and the
monitor as threads (jobs.execution.cluster).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.p1_inflight import seed_steward  # noqa: E402

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/steward_rss",
    "REDIS_URL": "redis://127.0.0.1:6379/8",
    "Q_CLUSTER_NAME": "steward-rss",
}
ROLE_ORDER = ("sentinel", "worker", "other")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs submitted under load")
    parser.add_argument("--in-flight", type=int, default=0, help="long jobs seeded first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=90, help="seconds to wait for the jobs")
    return parser.parse_args(argv)


def memory(pid):
    """RSS, its anonymous and file-backed parts, and PSS of one process, in bytes."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0]) * 1024
    return {
        "rss": fields["VmRSS"],
        "anon": fields["RssAnon"],
        "file": fields["RssFile"] + fields["RssShmem"],
        "pss": common.pss_bytes(pid),
    }


def roles(root_pid):
    """``{pid: role}`` for the cluster's processes, from the status django-q2 keeps in Redis."""
    from django_q.status import Stat

    named = {root_pid: "sentinel"}
    for stat in Stat.get_all():
        if stat.sentinel == root_pid:
            named.update({pid: "worker" for pid in stat.workers})
    return named


def snapshot(root_pid):
    """``{pid: (role, memory)}`` for every live process of the tree."""
    named = roles(root_pid)
    taken = {}
    for pid in common.process_tree(root_pid):
        try:
            taken[pid] = (named.get(pid, "other"), memory(pid))
        except (FileNotFoundError, ProcessLookupError, KeyError):
            continue
    return taken


def keep_peaks(peaks, taken):
    for pid, (role, figures) in taken.items():
        old = peaks.get(pid, (role, {}))[1]
        peaks[pid] = (role, {key: max(value, old.get(key, 0)) for key, value in figures.items()})


def table(title, taken):
    def order(item):
        pid, (role, _) = item
        return ROLE_ORDER.index(role), pid

    lines = [
        f"{title}",
        "| process | pid | RSS | anon | file | PSS |",
        "|---|---|---|---|---|---|",
    ]
    total = dict.fromkeys(("rss", "anon", "file", "pss"), 0)
    for pid, (role, figures) in sorted(taken.items(), key=order):
        lines.append(
            f"| {role} | {pid} | {common.mb(figures['rss'])} | {common.mb(figures['anon'])} | "
            f"{common.mb(figures['file'])} | {common.mb(figures['pss'])} |"
        )
        for key in total:
            total[key] += figures[key]
    lines.append(
        f"| **sum of {len(taken)}** | | **{common.mb(total['rss'])}** | {common.mb(total['anon'])}"
        f" | {common.mb(total['file'])} | {common.mb(total['pss'])} |"
    )
    return "\n".join(lines)


def wait_for_processes(cluster, count, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        named = roles(cluster.process.pid)
        if len(named) >= count:
            return
        if cluster.process.poll() is not None:
            raise RuntimeError(f"run_workers exited; see {cluster.log_path}")
        time.sleep(0.5)
    raise RuntimeError(f"the cluster did not start its processes; see {cluster.log_path}")


def submit(count):
    """``count`` jobs through ``submit_job``: 85 % background (1-8 s at the fake), 10 % sync
    and 5 % stream (under 1.5 s: each holds a worker while it runs)."""
    from jobs import services

    workspace, user = common.bench_user()
    rng = common.new_rng(1)
    submitted = []
    for number in range(count):
        kind = number % 20
        short = f"[fake:duration={rng.uniform(0.3, 1.5):.1f}]"
        if kind < 2:
            job_type, data = "tag_ticket", {"subject": "Login", "body": f"Help. {short}"}
        elif kind < 3:
            job_type = "draft_support_reply"
            data = {"customer_name": "Ada", "tone": "formal", "message": f"Hi. {short}"}
        else:
            job_type = "summarize_document"
            directive = f"[fake:duration={rng.uniform(1, 8):.1f}]"
            data = {"title": "Bench", "document": f"Bench. {directive}"}
        job = services.submit_job(
            workspace=workspace, submitter=user, job_type=job_type, input=data
        )
        submitted.append(job.pk)
    return submitted


def main(argv=None):
    args = parse_args(argv)
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    common.setup_django()
    from django_q.tasks import async_task

    from fake_openai.testing import FakeServer
    from jobs.models import ACTIVE, Job
    from tests.processes import Cluster, steward_env

    common.clean_slate()
    common.set_watchdog(True)
    expected = 1 + args.workers  # run_workers (the sentinel) and its workers
    print(f"{common.utc_now_text()}; {common.machine_notes()}", flush=True)
    with FakeServer(seed=1) as fake:
        if args.in_flight:
            t0 = time.time()
            seed_steward(fake, args.in_flight, common.new_rng(1), history=200)
            print(f"seeded {args.in_flight} in-flight jobs in {time.time() - t0:.0f} s", flush=True)
        env = steward_env(fake.base_url, Q_WORKERS=args.workers)
        cluster = Cluster(env).start()
        try:
            wait_for_processes(cluster, expected)
            time.sleep(3)
            started = snapshot(cluster.process.pid)
            print(table("started (no task run yet)", started), flush=True)

            async_task("jobs.tasks.run_pump", 0, group="pump")
            t0 = time.time()
            ids = submit(args.jobs)
            print(f"\nsubmitted {len(ids)} jobs in {time.time() - t0:.1f} s", flush=True)
            peaks, peak_sum = {}, 0
            deadline = time.time() + args.timeout
            active = len(ids)
            while time.time() < deadline:
                taken = snapshot(cluster.process.pid)
                keep_peaks(peaks, taken)
                peak_sum = max(peak_sum, sum(figures["rss"] for _, figures in taken.values()))
                active = Job.objects.filter(pk__in=ids, status__in=ACTIVE).count()
                if not active:
                    break
                time.sleep(1)
            done = Job.objects.filter(pk__in=ids).exclude(status__in=ACTIVE).count()
            print(f"{done} of {len(ids)} finished in {time.time() - t0:.0f} s", flush=True)
            time.sleep(5)
            keep_peaks(peaks, settled := snapshot(cluster.process.pid))
            print(table("\npeak under load (each process's own peak)", peaks), flush=True)
            print(f"highest RSS sum in one sample (the P1 figure): {common.mb(peak_sum)}")
            print(table("\nsettled (5 s after the jobs finished)", settled), flush=True)
        finally:
            cluster.stop()
    common.clean_slate()
    print(f"\n{common.machine_notes()} at the end", flush=True)


if __name__ == "__main__":
    main()
