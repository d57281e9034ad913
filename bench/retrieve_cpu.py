"""CPU per retrieve in the pump's SDK client: the SDK's default httpx transport, the SDK's
aiohttp client (``openai[aiohttp]``) and the lean transport
(jobs/execution/provider/transport.py), in one
run against one fake OpenAI server.

    python bench/retrieve_cpu.py --responses 500 --rounds 4 --repeats 3

Creates ``--responses`` long-running background responses at the fake, then for each design
(alternating, ``--repeats`` times) runs ``jobs.execution.provider.retrieve_many`` over all of them
``--rounds`` times, 16 at a time, as a pump turn does, and prints this process's CPU
milliseconds per retrieve (getrusage, user + system) and retrieves per second of wall time.
The fake server runs in its own process; its CPU is not counted.
"""

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    common.setup_django()
    from django.conf import settings

    from fake_openai.testing import FakeServer
    from jobs.execution import provider
    from jobs.execution.provider.client import reset_clients

    started, load = common.utc_now_text(), common.machine_notes()
    designs = {"SDK default transport": "httpx", "SDK aiohttp client": "aiohttp"}
    designs["lean transport"] = "lean"
    figures = {design: [] for design in designs}
    with FakeServer(seed=1) as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        bodies = [common.response_body(i, 3600, 0) for i in range(args.responses)]
        ids = [rid for rid, _ in asyncio.run(common.create_responses(fake.base_url, bodies))]
        for _ in range(args.repeats):
            for design in figures:
                settings.PROVIDER_HTTP = designs[design]
                reset_clients()
                provider.retrieve_many(ids[:16])  # connections up before the clock starts
                wall, cpu = time.perf_counter(), cpu_seconds()
                for _ in range(args.rounds):
                    answers = provider.retrieve_many(ids)
                    assert all(a.provider_status == "in_progress" for a in answers.values())
                count = args.rounds * len(ids)
                figures[design].append(
                    (1000 * (cpu_seconds() - cpu) / count, count / (time.perf_counter() - wall))
                )
        reset_clients()
    lines = [
        "| design | CPU ms per retrieve (median; all runs) | retrieves/s of wall time (median) |",
        "|---|---|---|",
    ]
    for design, runs in figures.items():
        cpu_ms = [c for c, _ in runs]
        lines.append(
            f"| {design} | {statistics.median(cpu_ms):.3f} ("
            + ", ".join(f"{c:.3f}" for c in cpu_ms)
            + f") | {statistics.median(r for _, r in runs):.0f} |"
        )
    report = "\n".join(
        [
            f"Run started {started}; {args.responses} in-progress responses, {args.rounds} rounds "
            f"of retrieve_many (16 at a time) per run, {args.repeats} runs per design, "
            "alternating.",
            f"Machine: {load} at start, {common.machine_notes()} at the end.",
            "",
            *lines,
        ]
    )
    print(report)
    if args.results:
        common.append_results(
            "retrieve_cpu.py", "Retrieve CPU: SDK default vs SDK aiohttp vs lean", report, argv
        )


if __name__ == "__main__":
    main()
