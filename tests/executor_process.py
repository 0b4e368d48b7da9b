"""Test helper: `python -m aks_executor` as a real process, its probes, and waiting on them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One executor process; `env` is added to the inherited environment."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self._err = log.open("wb")
        # Replicas of one test share one account, so one intent store (SQLite) beside their logs.
        full = {**os.environ, "PYTHONPATH": str(ROOT), "MARKETFLOW_HTTP_HOST": "127.0.0.1",
                "MARKETFLOW_HTTP_PORT": str(self.port), "MARKETFLOW_STATE_DIR": str(log.parent / "state"), **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "aks_executor"], cwd=ROOT, env=full,
                                     stdout=subprocess.DEVNULL, stderr=self._err)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def checks(self) -> dict[str, bool] | None:
        try:
            return json.loads(self.get("/readyz")[1])["checks"]
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        checks = self.checks()
        return bool(checks) and all(checks.values())

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._err.close()


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")
