"""Cold start: how long a fresh Python process takes to import `function_app` (what the Functions
worker does before the first invocation), beside `python -c pass` (the interpreter's own floor),
as whole processes, interleaved, and the modules `-X importtime` finds slowest (cumulative).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.5  # issue #8 item 14


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "0"}


def time_once(code: str) -> float:
    """Wall seconds of `python -c code` as a whole process, from spawn to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_times(top: int = 8) -> list[tuple[str, float]]:
    """The `top` modules by cumulative import time (seconds) under `-X importtime`."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import function_app"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True).stderr
    rows: list[tuple[str, float]] = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append((name, int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: r[1], reverse=True)[:top]


def run(runs: int = 10, progress: Callable[[str], None] = lambda _s: None) -> dict[str, Any]:
    time_once("import function_app")  # warm: bytecode compiled, files in the page cache
    app: list[float] = []
    floor: list[float] = []
    for i in range(runs):
        app.append(time_once("import function_app"))
        floor.append(time_once("pass"))
        progress(f"cold start: run {i + 1}/{runs}: import function_app {app[-1]:.3f} s")
    return {"runs": runs, "app": app, "floor": floor, "top": import_times(),
            "load": os.getloadavg()[0]}


def render(r: dict[str, Any], when: str) -> str:
    app, floor = statistics.median(r["app"]), statistics.median(r["floor"])
    lines = [
        "## Cold start (import function_app)", "",
        f"Measured {when} UTC. Whole fresh processes, interleaved, {r['runs']} runs each, after one warm-up "
        f"(bytecode compiled); load average {r['load']:.1f} on this shared 2-core machine.", "",
        "| process | median s | min s | max s |", "|---|---:|---:|---:|",
        f"| `python -c \"import function_app\"` | {app:.3f} | {min(r['app']):.3f} | {max(r['app']):.3f} |",
        f"| `python -c pass` (interpreter floor) | {floor:.3f} | {min(r['floor']):.3f} | {max(r['floor']):.3f} |",
        "",
        f"- Importing the app: **{app:.2f} s** median (target: under {TARGET_S} s; "
        f"{'holds' if app < TARGET_S else 'NOT met'}), {app - floor:.2f} s above the interpreter.",
        "- Slowest imports (cumulative, one `-X importtime` run, which inflates them): "
        + ", ".join(f"`{name}` {s:.2f} s" for name, s in r["top"]) + ".",
        "- Reproduce: `make bench BENCH=cold_start`; the limit is a test (`tests/test_cold_start.py`).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from datetime import UTC, datetime

    print(render(run(progress=lambda s: print(s, file=sys.stderr)), f"{datetime.now(UTC):%Y-%m-%d %H:%M}"))
