"""A closed-loop HTTP/1.1 load generator for the benchmarks (no wrk on this machine).

    python bench/loadgen.py --url http://127.0.0.1:8001/api/v1/jobs --body '{...}' \
        --header 'Authorization: Bearer …' --concurrency 32 --warmup 5 --seconds 15

Each of ``concurrency`` clients keeps one keep-alive connection and sends the next POST as
soon as the previous answer is read. Requests are written and answers parsed by hand on
asyncio streams (no HTTP library), so the client stays cheap next to the server it loads.
With ``--idempotency-prefix`` every request carries its own ``Idempotency-Key``. Prints one
JSON object: throughput and latencies over the window after the warm-up, status counts over
the whole run (warm-up included, for row counting), and the client's own CPU seconds.
"""

import argparse
import asyncio
import json
import math
import resource
import time
from collections import Counter
from urllib.parse import urlsplit


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON body sent with every POST")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--idempotency-prefix", default="")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=15)
    return parser.parse_args(argv)


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def read_answer(reader):
    """Status code and whether the server keeps the connection open."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and value == "chunked":
            raise ValueError("chunked answers are not supported")
        elif name == "connection" and value == "close":
            keep = False
    await reader.readexactly(length)
    return status, keep


class Run:
    def __init__(self, args):
        self.args = args
        parts = urlsplit(args.url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        self.body = args.body.encode()
        fixed = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        fixed += ["Content-Type: application/json", f"Content-Length: {len(self.body)}"]
        fixed += args.header
        self.head = "\r\n".join(fixed)
        self.latencies, self.window_statuses, self.statuses = [], Counter(), Counter()
        self.errors = 0

    def request(self, client, number):
        head = self.head
        if self.args.idempotency_prefix:
            head += f"\r\nIdempotency-Key: {self.args.idempotency_prefix}-{client}-{number}"
        return head.encode() + b"\r\n\r\n" + self.body

    async def client(self, client, window_start, end):
        reader = writer = None
        number = 0
        while time.monotonic() < end:
            if writer is None:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            sent = time.monotonic()
            try:
                writer.write(self.request(client, number))
                status, keep = await read_answer(reader)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                self.errors += 1
                writer.close()
                reader = writer = None
                continue
            done = time.monotonic()
            number += 1
            self.statuses[status] += 1
            if window_start <= sent and done <= end:
                self.latencies.append(done - sent)
                self.window_statuses[status] += 1
            if not keep:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def run(self):
        start = time.monotonic()
        window_start = start + self.args.warmup
        end = window_start + self.args.seconds
        await asyncio.gather(
            *(self.client(i, window_start, end) for i in range(self.args.concurrency))
        )
        return end - window_start


def main(argv=None):
    args = parse_args(argv)
    run = Run(args)
    window = asyncio.run(run.run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ok_window = sum(n for s, n in run.window_statuses.items() if 200 <= s < 300)
    print(
        json.dumps(
            {
                "window": window,
                "completed": len(run.latencies),
                "ok_per_s": ok_window / window,
                "req_per_s": len(run.latencies) / window,
                "p50_ms": percentile(run.latencies, 50) * 1000,
                "p99_ms": percentile(run.latencies, 99) * 1000,
                "window_statuses": dict(run.window_statuses),
                "statuses": dict(run.statuses),
                "ok_total": sum(n for s, n in run.statuses.items() if 200 <= s < 300),
                "errors": run.errors,
                "client_cpu": usage.ru_utime + usage.ru_stime,
                "elapsed": args.warmup + window,
            }
        )
    )


if __name__ == "__main__":
    main()
