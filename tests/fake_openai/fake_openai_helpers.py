"""Small helpers shared by the fake server tests."""

from __future__ import annotations

import time


def wait_terminal(client, response_id: str, timeout: float = 5.0):
    """Poll like Steward does (but fast) until the response leaves queued/in_progress."""
    deadline = time.monotonic() + timeout
    while True:
        resp = client.responses.retrieve(response_id)
        if resp.status not in ("queued", "in_progress"):
            return resp
        assert time.monotonic() < deadline, f"{response_id} still {resp.status}"
        time.sleep(0.05)


def fast(**extra: str) -> dict[str, str]:
    """Scenario metadata for a short run."""
    return {"fake_duration": "0.3", **extra}
