"""P7: retrieves/s of the fake OpenAI server, next to a bare Starlette/uvicorn baseline.

What it does, in one run on this machine:
1. starts ``python -m fake_openai`` (or uses ``--url`` of a running one) and fills it with
   ``--responses`` background responses that stay in flight for an hour (lazy state: no task per
   response), reporting create rate and the server's resident memory;
2. drives ``GET /v1/responses/{id}`` over random ids of those responses with ``wrk`` (C, one
   thread, so the load generator is not what is measured) for ``--seconds``;
3. starts a bare Starlette app on the same uvicorn stack (httptools + uvloop, access log off)
   that returns a fixed JSON body of the same size, and drives it the same way;
4. prints both (req/s, p50, p99), cross-checks the fake's own retrieve counter, and appends a
   section to ``bench/RESULTS.md``.

    python bench/p7_fake_server.py --concurrency 64 --seconds 10 --responses 10000
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fake_openai.testing import FakeServer  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
BASELINE_APP = """
import sys, socket, asyncio, uvicorn, uvloop
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
BODY = open(sys.argv[1], "rb").read()
async def fixed(request):
    return Response(BODY, media_type="application/json")
app = Starlette(routes=[Route("/v1/responses/{response_id}", fixed)])
sock = socket.socket(); sock.bind(("127.0.0.1", 0))
config = uvicorn.Config(app, http="httptools", loop="uvloop", access_log=False,
                        proxy_headers=False, log_level="warning", backlog=4096)
server = uvicorn.Server(config)
async def main():
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    print("READY", sock.getsockname()[1], flush=True)
    await task
uvloop.run(main())
"""
LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
math.randomseed(%d)
request = function()
  return wrk.format("GET", "/v1/responses/" .. ids[math.random(#ids)])
end
"""


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


FILL_LUA = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""


def fill(url: str, count: int) -> tuple[list[str], float]:
    """Create at least ``count`` background responses that stay in flight for an hour (wrk
    POSTs, then the ids from ``/_fake/stats``); return the ids and the create rate."""
    body = {
        "model": "gpt-4o-mini",
        "input": "Benchmark input: summarise the Steward design notes for the weekly review.",
        "background": True,
        "store": True,
        "metadata": {"fake_duration": "3600", "fake_queued_for": "1"},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(FILL_LUA % json.dumps(body))
    started, created = time.perf_counter(), 0
    while created < count:  # wrk runs for a duration, so aim at ~3,000 creates/s and top up
        seconds = max(1, math.ceil((count - created) / 3000))
        cmd = ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", lua.name, url + "/v1/responses"]
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        stats = json.loads(urllib.request.urlopen(url + "/_fake/stats?responses=0").read())
        created = stats["routes"].get("create", 0)
    elapsed = time.perf_counter() - started
    os.unlink(lua.name)
    stats = json.loads(urllib.request.urlopen(url + "/_fake/stats").read())
    ids = [rid for rid, counts in stats["responses"].items() if counts.get("create")]
    return ids, len(ids) / elapsed


def run_wrk(url: str, ids_file: str, concurrency: int, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(LUA % (ids_file, 7))
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", lua.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)

    def latency_ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": latency_ms("50%"),
        "p99_ms": latency_ms("99%"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": "Socket errors" in out,
    }


def retrieves(url: str) -> int:
    stats = json.loads(urllib.request.urlopen(url + "/_fake/stats?responses=0").read())
    return stats["routes"].get("retrieve", 0)


def median(runs: list[dict]) -> dict:
    """The run with the median req/s (its latencies belong to the same run)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def start_baseline(body_file: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE_APP, body_file], stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline().split()
    return proc, f"http://127.0.0.1:{line[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved fake/baseline runs")
    parser.add_argument("--responses", type=int, default=10_000, help="in-flight responses")
    parser.add_argument("--url", help="a running fake (server URL without /v1); default: start one")
    parser.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    command = "python " + " ".join(
        shlex.quote(a) for a in ["bench/p7_fake_server.py", *sys.argv[1:]]
    )
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"$ {command}\n# {date}, {os.cpu_count()} cores")

    load_before = os.getloadavg()[0]
    server = None if args.url else FakeServer().start()
    url = args.url or server.url
    proc = None
    tmp = Path(tempfile.mkdtemp(prefix="p7-"))
    try:
        ids, create_rate = fill(url, args.responses)
        memory = rss_kb(server.process.pid) if server else 0
        sample = urllib.request.urlopen(f"{url}/v1/responses/{ids[0]}").read()
        (tmp / "ids.txt").write_text("\n".join(ids))
        (tmp / "body.json").write_bytes(sample)
        proc, base_url = start_baseline(str(tmp / "body.json"))
        fakes, baselines, counted = [], [], 0
        for _ in range(args.rounds):  # interleaved, so background load hits both alike
            before = retrieves(url)
            fakes.append(run_wrk(url, str(tmp / "ids.txt"), args.concurrency, args.seconds))
            counted += retrieves(url) - before
            baselines.append(
                run_wrk(base_url, str(tmp / "ids.txt"), args.concurrency, args.seconds)
            )
        in_memory = json.loads(urllib.request.urlopen(url + "/_fake/stats?responses=0").read())[
            "responses_in_memory"
        ]
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        if server:
            server.stop()
        shutil.rmtree(tmp)
    fake, baseline = median(fakes), median(baselines)
    per_round = ", ".join(
        f"{f['rps']:,.0f}/{b['rps']:,.0f}" for f, b in zip(fakes, baselines, strict=True)
    )
    lines = [
        f"- in-flight responses: {in_memory} (created at {create_rate:,.0f}/s; "
        f"server RSS {memory / 1024:,.0f} MiB)",
        f"- body: {len(sample)} bytes; wrk -t1 -c{args.concurrency} -d{args.seconds}s, random ids",
        f"- fake GET /v1/responses/{{id}} (median of {args.rounds}): {fake['rps']:,.0f} req/s, "
        f"p50 {fake['p50_ms']:.2f} ms, p99 {fake['p99_ms']:.2f} ms, non-2xx {fake['non_2xx']} "
        f"(fake counted {counted} retrieves, wrk {sum(f['requests'] for f in fakes)})",
        f"- baseline bare Starlette/uvicorn, same body (median): {baseline['rps']:,.0f} req/s, "
        f"p50 {baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms",
        f"- rounds (fake/baseline req/s): {per_round}; medians shown above",
        f"- 1-min load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} "
        "(anything above ~1 is other work competing for the 2 cores)",
        f"- fake / baseline: {fake['rps'] / baseline['rps']:.0%}; target >= 2,000 req/s: "
        f"{'met' if fake['rps'] >= 2000 else 'NOT met'}",
    ]
    print("\n".join(lines))
    if not args.no_results:
        if not RESULTS.exists():
            RESULTS.write_text("# Steward benchmark results\n")
        with RESULTS.open("a") as out:
            out.write(f"\n## P7 fake OpenAI server: retrieves/s ({date})\n\n")
            out.write(
                f"Command: `{command}` ({os.cpu_count()} cores)\n\n" + "\n".join(lines) + "\n"
            )
    return 0 if fake["rps"] >= 2000 and fake["non_2xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
