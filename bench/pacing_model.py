"""A model of the poll pacing (no Django, no servers): retrieves per job and the share of
finishes seen late, for uniform(30 s, 10 min) durations, with and without the learned first look.

    python bench/pacing_model.py --jobs 20000 --seed 1

Each job is looked at first at the first look (or after ``POLL_MIN_INTERVAL``), then every
max(1.5 s, 10 % of its age) × uniform(0.9, 1.0), as ``jobs/execution/pacing.py`` schedules
it, until a look comes at or after its end. The first look is 0.9 × the 2nd percentile of 200
durations drawn from the same distribution, as the pacing learns it. ``--overhead`` adds a
fixed delay to every detection (slip and processing), to see where the lag target starts
to fail. Prints retrieves per job, the ratio to fixed 1 s polling, the retrieves/s at 10,000
in flight and the share of jobs seen within max(2 s, 10 % of duration).
"""

import argparse
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import MAX_DURATION, MIN_DURATION, allowance  # noqa: E402

MIN_INTERVAL = 1.5


def looks(duration, first_look, rng):
    """Retrieves until the job's end is seen, and the lag."""
    age = max(first_look, MIN_INTERVAL * rng.uniform(0.9, 1.0))
    count = 1
    while age < duration:
        age += max(first_look - age, max(MIN_INTERVAL, 0.1 * age) * rng.uniform(0.9, 1.0))
        count += 1
    return count, age - duration


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--overhead", type=float, default=0.0, help="seconds added to each lag")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    history = sorted(rng.uniform(MIN_DURATION, MAX_DURATION) for _ in range(200))
    learned = 0.9 * history[math.ceil(0.02 * len(history)) - 1]
    durations = [rng.uniform(MIN_DURATION, MAX_DURATION) for _ in range(args.jobs)]
    mean = sum(durations) / len(durations)  # fixed 1 s polling: one retrieve per second
    print(f"{args.jobs} jobs, mean duration {mean:.0f} s; learned first look {learned:.1f} s")
    print("| policy | retrieves per job | vs fixed 1 s | retrieves/s at 10,000 | within |")
    print("|---|---|---|---|---|")
    for name, first in (("backoff from the start", 0.0), ("learned first look", learned)):
        results = [looks(d, first, rng) for d in durations]
        per_job = sum(n for n, _ in results) / len(results)
        within = sum(
            lag + args.overhead <= allowance(d)
            for d, (_, lag) in zip(durations, results, strict=True)
        ) / len(results)
        print(
            f"| {name} | {per_job:.1f} | {per_job / mean:.3f} | {per_job * 10000 / mean:.0f} "
            f"| {within:.1%} |"
        )


if __name__ == "__main__":
    main()
