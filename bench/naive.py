"""The naive baseline the benchmarks compare Steward with: one task per job that loops
``retrieve; sleep 1 s`` until the response is terminal. Written here, never used by the app.

Each retrieve appends ``R <epoch> <job id> <seconds late>`` and the terminal one also
``D <epoch> <job id>`` to ``log_path`` (one write per line, so processes never interleave).
"""

import os
import time
from functools import cache

import openai

TERMINAL = {"completed", "failed", "incomplete", "cancelled"}


@cache
def _client(base_url):
    return openai.OpenAI(api_key="bench", base_url=base_url, max_retries=2, timeout=30)


def _append(log_path, line):
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def poll_until_done(response_id, job_id, log_path, base_url, first_due):
    """django-q2 task (and P2 thread body): poll one response every second until it ends."""
    client, due = _client(base_url), first_due
    while True:
        try:
            status = client.responses.retrieve(response_id).status
        except openai.APIError:
            status = "error"
        now = time.time()
        line = f"R {now:.3f} {job_id} {now - due:.3f}\n"
        if status in TERMINAL:
            _append(log_path, line + f"D {now:.3f} {job_id}\n")
            return status
        _append(log_path, line)
        time.sleep(1.0)
        due = time.time()
