"""``FakeServer``: run ``python -m fake_openai`` in a subprocess for a test or a benchmark.

A subprocess rather than a thread so the fake has its own event loop and GIL, exactly as in
production use, and so a test can never share state with it by accident. The child binds port 0
and prints its address, so parallel test runs never race for a port.

    with FakeServer(seed=1) as server:
        client = OpenAI(api_key="test", base_url=server.base_url, max_retries=0)
        server.configure(faults={"429": 0.2})
        ...
        assert server.stats()["routes"]["retrieve"] == 3
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_READY = "FAKE_OPENAI_READY "


class FakeServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | str | None = None,
        retention_seconds: float | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        python: str = sys.executable,
        startup_timeout: float = 20.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.args = [python, "-m", "fake_openai", "--host", host, "--port", str(port)]
        for flag, value in (
            ("--seed", seed),
            ("--retention-seconds", retention_seconds),
            ("--webhook-url", webhook_url),
            ("--webhook-secret", webhook_secret),
        ):
            if value is not None:
                self.args += [flag, str(value)]
        self.args += list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self.url = ""

    @property
    def base_url(self) -> str:
        """What to give ``OpenAI(base_url=…)``: the server URL plus ``/v1``."""
        return self.url + "/v1"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeServer:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, env=env, text=True, bufsize=1
        )
        deadline = time.monotonic() + self.startup_timeout
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()))
        reader.daemon = True
        reader.start()
        reader.join(self.startup_timeout)
        line = lines[0] if lines else ""
        if not line.startswith(_READY):
            self.stop()
            raise RuntimeError(f"fake_openai did not start: {line!r} (args {self.args})")
        self.url = line[len(_READY) :].strip()
        while time.monotonic() < deadline:
            try:
                self._call("GET", "/_fake/health")
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("fake_openai started but does not answer")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- control API -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def configure(self, **config: Any) -> dict:
        """Partial update of the server config (``faults``, ``retention_seconds``, webhook_*…)."""
        return self._call("POST", "/_fake/config", config)

    def config(self) -> dict:
        return self._call("GET", "/_fake/config")

    def reset(self, **config: Any) -> dict:
        """Forget all responses, counters and logs; restore startup config, then apply
        ``config``."""
        return self._call("POST", "/_fake/reset", config)

    def stats(self, responses: bool = True, timing: bool = False) -> dict:
        query = "&".join(
            part for part, on in (("responses=0", not responses), ("timing=1", timing)) if on
        )
        return self._call("GET", "/_fake/stats" + (f"?{query}" if query else ""))

    def log(self, limit: int = 200) -> list[dict]:
        return self._call("GET", f"/_fake/log?limit={limit}")["data"]

    def webhooks(self) -> list[dict]:
        """Webhook delivery attempts (id, type, attempt, outcome …), oldest first."""
        return self._call("GET", "/_fake/webhooks")["data"]

    def client(self, **kwargs: Any):
        """An ``openai.OpenAI`` pointed at this server (``max_retries=0`` unless given)."""
        from openai import OpenAI

        kwargs.setdefault("api_key", "test")
        kwargs.setdefault("max_retries", 0)
        return OpenAI(base_url=self.base_url, **kwargs)
