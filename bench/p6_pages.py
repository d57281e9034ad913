"""P6: the busy pages at scale: SQL queries and server time at 100 jobs vs 100,000 jobs.

    python bench/p6_pages.py --small 100 --large 100000 --requests 5 --rounds 3 [--reuse]

Two PostgreSQL databases (``--small-db``, ``--large-db``) are migrated and filled by
``bench/p6_seed.py`` with the same distribution at two sizes (~10 and ~10,000 drafts waiting
for review in the big workspace); ``--reuse`` keeps a database that already holds the same
size and seed. Then every page below is requested in-process through Django's test ``Client``
as the user it is for (the big workspace's busiest submitter, a reviewer there, and the admin
of all five workspaces), alternating small and large database request by request, ``--rounds``
× ``--requests`` times each after one warm-up request. Reported per page and size:

- SQL queries of one request (``CaptureQueriesContext``; every request's count is checked to
  be the same, a varying one is reported as a range);
- server time: the median wall time of ``Client.get`` (URL resolving, middleware, view,
  queries, template rendering; no HTTP socket), and the median time spent in SQL.

Targets: the same query count at both sizes and at most 12; large median ≤ 2 × small median.
The markdown section goes to stdout and, with ``--out``, to a file.
"""

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAX_QUERIES = 12
MAX_SLOWDOWN = 2.0
PAGES = [  # (label, who, URL)
    ("My jobs", "p6-submitter", "/"),
    ("My jobs, completed filter", "p6-submitter", "/?status=completed"),
    ("Review queue", "p6-reviewer", "/review/"),
    (
        "Review queue, unclaimed by priority",
        "p6-reviewer",
        "/review/?claim=unclaimed&order=priority",
    ),
    ("Ops dashboard, 24 h", "p6-admin", "/ops/"),
    ("Ops dashboard, 30 d", "p6-admin", "/ops/?window=30d"),
    ("Ops CSV cost, 30 d", "p6-admin", "/ops/export/cost.csv?window=30d"),
    ("Ops CSV latency, 30 d", "p6-admin", "/ops/export/latency.csv?window=30d"),
    ("Ops failure list, 30 d", "p6-admin", "/ops/failures/provider/?window=30d"),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=100, help="jobs in the small database")
    parser.add_argument("--large", type=int, default=100_000, help="jobs in the large database")
    parser.add_argument("--small-db", default="steward_p6_small")
    parser.add_argument("--large-db", default="steward_p6_large")
    parser.add_argument("--requests", type=int, default=5, help="timed requests per page per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep a database seeded alike")
    parser.add_argument("--out", help="also write the markdown section to this file")
    return parser.parse_args(argv)


def setup(first_db):
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{first_db}")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("Q_CLUSTER_NAME", "steward-p6")
    os.environ.setdefault("CACHE_KEY_PREFIX", "steward-p6")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "false"  # as served: no debug toolbar-ish template context
    os.environ.pop("OPENAI_API_KEY", None)
    import django

    django.setup()


def use_database(name):
    """Point the default connection at another database of the same server."""
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = name


def ensure_database(name):
    import psycopg
    from django.db import connection

    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"],
        port=params["PORT"] or 5432,
        user=params["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def prepare(name, jobs, args):
    """Migrate and seed one database (unless ``--reuse`` finds it seeded alike)."""
    from django.core.management import call_command

    from bench import p6_seed

    ensure_database(name)
    use_database(name)
    call_command("migrate", verbosity=0, interactive=False)
    if args.reuse and p6_seed.already_seeded(jobs, args.seed):
        return f"{name}: reused ({jobs} jobs)"
    started = time.perf_counter()
    counts = p6_seed.seed(jobs, seed=args.seed)
    took = time.perf_counter() - started
    detail = ", ".join(f"{model} {count:,}" for model, count in counts.items())
    return f"{name}: seeded {jobs:,} jobs in {took:.1f} s ({detail})"


def population(name):
    from django.db.models import Count, Q

    from jobs.models import Job

    use_database(name)
    big = Job.objects.filter(workspace__slug="p6-acme")
    return big.aggregate(
        jobs=Count("id"),
        pending=Count(
            "id", filter=Q(status="needs_review", review_state__in=["pending", "escalated"])
        ),
        own=Count("id", filter=Q(submitter__username="p6-submitter")),
    ) | {"all": Job.objects.count()}


def clients(name):
    from django.contrib.auth import get_user_model
    from django.test import Client

    use_database(name)
    logged_in = {}
    for username in {who for _, who, _ in PAGES}:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        logged_in[username] = client
    return logged_in


def one_request(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    sql = sum(float(q["time"]) for q in captured.captured_queries)
    return (
        len(captured.captured_queries),
        elapsed,
        sql,
        [q["sql"] for q in captured.captured_queries],
    )


def measure(args, sizes):
    """``{(label, size): {"queries": set, "times": [...], "sql": [...]}}``, small and large
    interleaved request by request so that other load on the machine hits both alike."""
    logins = {size: clients(db) for size, (db, _) in sizes.items()}
    results = {}
    for label, who, url in PAGES:
        for size, (db, _) in sizes.items():
            use_database(db)
            one_request(logins[size][who], url)  # warm-up
            results[(label, size)] = {"queries": set(), "times": [], "sql": [], "statements": None}
    for _ in range(args.rounds):
        for label, who, url in PAGES:
            for _ in range(args.requests):
                for size, (db, _) in sizes.items():
                    use_database(db)
                    count, elapsed, sql, statements = one_request(logins[size][who], url)
                    entry = results[(label, size)]
                    entry["queries"].add(count)
                    entry["times"].append(elapsed)
                    entry["sql"].append(sql)
                    entry["statements"] = statements
    return results


def queries_text(counts):
    return str(min(counts)) if len(counts) == 1 else f"{min(counts)}–{max(counts)}"


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def report(args, sizes, results, notes, populations):
    lines = [
        "| page | who | queries small / large | median server time small / large (SQL part) "
        "| large ÷ small | verdict |",
        "|---|---|---|---|---|---|",
    ]
    misses = []
    for label, who, url in PAGES:
        small, large = results[(label, "small")], results[(label, "large")]
        t_small, t_large = statistics.median(small["times"]), statistics.median(large["times"])
        s_small, s_large = statistics.median(small["sql"]), statistics.median(large["sql"])
        ratio = t_large / t_small
        problems = []
        if small["queries"] != large["queries"] or len(large["queries"]) > 1:
            problems.append("query count grows")
        if max(small["queries"] | large["queries"]) > MAX_QUERIES:
            problems.append(f"> {MAX_QUERIES} queries")
        if ratio > MAX_SLOWDOWN:
            problems.append(f"> {MAX_SLOWDOWN:g}× slower")
        misses += [f"{label}: {p}" for p in problems]
        lines.append(
            f"| {label} (`{url}`) | {who} | {queries_text(small['queries'])} / "
            f"{queries_text(large['queries'])} | {ms(t_small)} / {ms(t_large)} "
            f"({ms(s_small)} / {ms(s_large)}) | {ratio:.2f} | "
            f"{'; '.join(problems) if problems else 'met'} |"
        )
    small_pop, large_pop = populations["small"], populations["large"]
    header = [
        f"Command: `{args.command}`",
        "",
        f"Run {args.date}; {args.machine_before} at start, {args.machine_after} at the end.",
        "",
        *[f"- {note}" for note in notes],
        f"- small: {small_pop['all']:,} jobs; the big workspace holds {small_pop['jobs']:,}, "
        f"{small_pop['pending']:,} waiting for review, {small_pop['own']:,} of p6-submitter's",
        f"- large: {large_pop['all']:,} jobs; the big workspace holds {large_pop['jobs']:,}, "
        f"{large_pop['pending']:,} waiting for review, {large_pop['own']:,} of p6-submitter's",
        f"- {args.rounds} rounds × {args.requests} requests per page and size after one warm-up, "
        "small and large alternating request by request; in-process Django test `Client` "
        "(DEBUG off, no HTTP socket), PostgreSQL 127.0.0.1, sessions in the database.",
        "",
    ]
    verdict = "All targets met." if not misses else "Misses: " + "; ".join(misses) + "."
    how = [
        "",
        f"Targets: query count the same at both sizes and ≤ {MAX_QUERIES}; large median server "
        f"time ≤ {MAX_SLOWDOWN:g} × small. {verdict}",
        "",
        "### P6: how to read it",
        "",
        "Queries are those one request runs (session and user included). Server time is the "
        "median wall time of one in-process request, from URL resolving to the rendered body; "
        "the SQL part is the median time the database calls took inside it (Django records "
        "each query to the millisecond, so small SQL parts are coarse). The ratio compares "
        "medians of the two databases measured in the same run, so machine load hits both.",
    ]
    return "\n".join(header + lines + how)


def main(argv=None):
    args = parse_args(argv)
    from bench import common

    args.command = "python " + " ".join(
        shlex.quote(a) for a in ["bench/p6_pages.py", *sys.argv[1:]]
    )
    args.date = common.utc_now_text()
    args.machine_before = common.machine_notes()
    setup(args.small_db)
    sizes = {"small": (args.small_db, args.small), "large": (args.large_db, args.large)}
    notes = [prepare(db, jobs, args) for db, jobs in sizes.values()]
    for note in notes:
        print(note, flush=True)
    populations = {size: population(db) for size, (db, _) in sizes.items()}
    results = measure(args, sizes)
    args.machine_after = common.machine_notes()
    section = f"## P6 pages at scale ({args.date})\n\n" + report(
        args, sizes, results, notes, populations
    )
    print(section)
    if args.out:
        Path(args.out).write_text(section + "\n")
    if os.environ.get("P6_SHOW_SQL"):
        for (label, size), entry in results.items():
            print(f"\n--- {label} [{size}]")
            print("\n".join(entry["statements"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
