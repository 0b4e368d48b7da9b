"""Parameter sweeps as whole processes: `marketflow sweep` (1 and 2 jobs) beside backtesting.py's
`Backtest.optimize` (1 and 2 worker processes) on the same grid and data.

The grid is the issue's: fast 5..30 step 5, slow 20..100 step 10 (54 combinations, 50 run, the 4
with fast >= slow refused by the strategy and skipped by backtesting.py's constraint), `sma_cross`
long-only, cash 10000, commission 0.002, no loss limit (backtesting.py has none). The data is the
bundled BTCUSDT 1m sample repeated to 21,600 bars. Each run is a fresh process timed from spawn to
exit; contenders interleaved round after round; combinations per second of the whole process. The
returns of every combination are held side by side: they agree to float rounding except where the
two averages tie exactly in real arithmetic (slow = 2 x fast on cent prices: the mean of the last n
closes equals the mean of the n before), which each library's float sums break differently.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.pipeline_bench import build_file

BARS = 21_600
GRID = ["--grid", "fast=5:30:5", "--grid", "slow=20:100:10"]
SWEEP_ARGS = ["--symbol", "BTCUSDT", "--strategy", "sma_cross", *GRID, "--cash", "10000", "--commission", "0.002",
              "--risk", "max_drawdown_pct=0", "--risk", "daily_loss_pct=0", "--risk", "loss_streak=0"]
CONTENDERS = ("marketflow_1", "marketflow_2", "backtesting_1", "backtesting_2")


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def _marketflow_returns(out: Path) -> dict[str, float]:
    results = json.loads((out / "results.json").read_text())["results"]
    return {f"{r['params']['fast']},{r['params']['slow']}": r["return_pct"] for r in results if r["status"] == "ok"}


def _best(returns: dict[str, float]) -> str:
    return max(returns, key=lambda k: returns[k])


def run(repeats: int = 3, progress: Callable[[str], None] = print) -> dict[str, Any]:
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory() as tmp:
        data, got = build_file(Path(tmp), BARS)
        assert got == BARS, got
        outs = {c: Path(tmp) / c for c in CONTENDERS}

        def command(name: str) -> list[str]:
            jobs = name.rsplit("_", 1)[1]
            if name.startswith("marketflow"):
                return [sys.executable, "-m", "shared.cli", "sweep", "--source", str(data), *SWEEP_ARGS,
                        "--jobs", jobs, "--out", str(outs[name])]
            return [sys.executable, "-m", "benchmarks.backtesting_optimize", str(data), jobs,
                    str(Path(tmp) / f"{name}.json")]

        subprocess.run([sys.executable, "-c", "import shared.cli, backtesting"], env=env, check=True)  # .pyc
        walls: dict[str, list[float]] = {c: [] for c in CONTENDERS}
        for i in range(repeats):
            for name in CONTENDERS:
                wall, _ = _timed(command(name), env)
                walls[name].append(wall)
            progress(f"  round {i + 1}/{repeats}: " + ", ".join(f"{c} {walls[c][-1]:.1f} s" for c in CONTENDERS))
        returns = {c: (_marketflow_returns(outs[c]) if c.startswith("marketflow")
                       else json.loads((Path(tmp) / f"{c}.json").read_text())) for c in CONTENDERS}
    combos = len(returns["marketflow_1"])
    med = {c: statistics.median(walls[c]) for c in CONTENDERS}
    mf, bt = returns["marketflow_1"], returns["backtesting_1"]
    assert set(mf) == set(bt), (sorted(set(mf) ^ set(bt)))
    return {"bars": BARS, "repeats": repeats, "combinations": combos, "wall_s": med, "samples": walls,
            "per_s": {c: combos / med[c] for c in CONTENDERS},
            "best": {c: _best(returns[c]) for c in CONTENDERS},
            "max_return_diff_pp": max(abs(mf[k] - bt[k]) for k in mf),
            "equal": sum(1 for k in mf if abs(mf[k] - bt[k]) < 1e-9),
            "differ": {k: (mf[k], bt[k]) for k in sorted(mf) if abs(mf[k] - bt[k]) >= 1e-9},
            "jobs_equal": returns["marketflow_1"] == returns["marketflow_2"],
            "load": os.getloadavg(), "cpus": os.cpu_count()}


def render(r: dict[str, Any], when: str) -> str:
    per, wall = r["per_s"], r["wall_s"]
    names = {"marketflow_1": "`marketflow sweep --jobs 1`", "marketflow_2": "`marketflow sweep --jobs 2`",
             "backtesting_1": "backtesting.py `Backtest.optimize`, 1 worker process",
             "backtesting_2": "backtesting.py `Backtest.optimize`, 2 worker processes (its default here)"}
    lines = [
        "## Parameter sweep (whole processes)",
        "",
        f"Measured {when} UTC (load average {r['load'][0]:.2f} at the end, {r['cpus']} shared cores). The grid "
        f"fast=5:30:5 x slow=20:100:10: {r['combinations']} combinations run (4 with fast >= slow refused / "
        f"skipped by the constraint), `sma_cross` long-only on the bundled BTCUSDT 1m sample repeated to "
        f"{r['bars']:,} bars, cash 10000, commission 0.002, no loss limit. Each contender a fresh process "
        f"(`python -m benchmarks.backtesting_optimize` for backtesting.py 0.6.6, `FractionalBacktest`), "
        f"interleaved, median of {r['repeats']} rounds.",
        "",
        "| contender | whole process s (median) | combinations/s |",
        "|---|---:|---:|",
        *[f"| {names[c]} | {wall[c]:.2f} | {per[c]:.2f} |" for c in CONTENDERS],
        "",
        f"- `--jobs 2` over `--jobs 1`: **{per['marketflow_2'] / per['marketflow_1']:.2f}x**; backtesting.py 2 "
        f"workers over 1: {per['backtesting_2'] / per['backtesting_1']:.2f}x.",
        f"- MarketFlow over backtesting.py at the same worker count: 1: "
        f"**{per['marketflow_1'] / per['backtesting_1']:.2f}x**, 2: "
        f"**{per['marketflow_2'] / per['backtesting_2']:.2f}x**.",
        f"- Same answers: the best combination is {', '.join(sorted(set(r['best'].values())))} for every "
        f"contender; `--jobs 2` gives {'the same' if r['jobs_equal'] else 'DIFFERENT'} returns as `--jobs 1`. "
        f"{r['equal']} of {r['combinations']} combinations have the same return in `marketflow sweep` and "
        "`Backtest.optimize` (within 1e-9 percentage points); "
        + ("; ".join(f"{k.replace(',', '/')}: {a:.4f} % vs {b:.4f} %" for k, (a, b) in r["differ"].items())
           or "none differs")
        + (f" (largest {r['max_return_diff_pp']:.3f} pp). Those are fast/slow pairs with slow = 2 x fast, "
           "where on cent prices the two averages can be exactly equal (the mean of the last n closes equals "
           "the mean of the n before); a strict crossover there is decided by "
           "each library's float rounding (pandas' rolling mean vs MarketFlow's running sums)."
           if r["differ"] else "."),
        "- Reproduce: `make bench BENCH=sweep`.",
        "",
    ]
    return "\n".join(lines)
