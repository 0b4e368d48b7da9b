"""Whole processes side by side: `marketflow replay` vs a script running backtesting.py's `bt.run()`.

Both read the same headerless kline CSV (the bundled BTCUSDT 1m sample repeated, times shifted) at
two sizes, 86,400 and 259,200 bars; each run is a fresh process, timed from spawn to exit, the
contenders and sizes interleaved round after round. The measure is the marginal rate, bars added
over the time they add, (259,200 - 86,400) / the median over rounds of (time at 259,200 - time at
86,400), on wall time and on CPU time: interpreter start and imports cancel out. Each process
prints its own phase times (MarketFlow:
load, replay, report; the script: load, run), kept per run and reported as medians.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.pipeline_bench import build_file

SIZES = (86_400, 259_200)
# The backtest's semantics: no loss or drawdown limit stops trading (backtesting.py has none), the
# same sma_cross 10/20, cash and commission; both sides then make the same trades.
REPLAY_ARGS = ["--symbol", "BTCUSDT", "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=20",
               "--cash", "10000", "--commission", "0.002", "--risk", "max_drawdown_pct=0",
               "--risk", "daily_loss_pct=0", "--risk", "loss_streak=0"]
# The replay as a user runs it, with the default limits: the 50 % drawdown limit sets REDUCING after
# a few hundred trades, so fewer fills follow; not the same backtest, shown to say what the limits cost.
LIMITED_ARGS = REPLAY_ARGS[:REPLAY_ARGS.index("--risk")]
_PHASE = re.compile(r"(\w+) ([0-9.]+) s")


def _phases(stdout: str) -> dict[str, float]:
    for line in stdout.splitlines():
        if line.startswith("time "):
            return {k: float(v) for k, v in _PHASE.findall(line)}
    raise RuntimeError(f"no `time` line in the output:\n{stdout}")


def _trades(stdout: str) -> int:
    for line in stdout.splitlines():
        if line.startswith("trades "):
            return int(line.split()[1])
    raise RuntimeError(f"no `trades` line in the output:\n{stdout}")


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, from the reaped child's rusage) of one process, its stdout."""
    c0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - c0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def run(repeats: int = 5, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Median wall time, CPU time and phases of each contender at each size over `repeats` interleaved
    rounds, and the marginal rates."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for n in SIZES:
            sub = Path(tmp) / str(n)
            sub.mkdir()
            files[n], got = build_file(sub, n)
            assert got == n, (got, n)
        commands = {
            "marketflow": lambda n: [sys.executable, "-m", "shared.cli", "replay", "--source", str(files[n]),
                                     *REPLAY_ARGS, "--out", str(Path(tmp) / f"out-{n}")],
            "backtesting_py": lambda n: [sys.executable, "-m", "benchmarks.backtesting_process", str(files[n])],
            "marketflow_limits": lambda n: [sys.executable, "-m", "shared.cli", "replay", "--source", str(files[n]),
                                            *LIMITED_ARGS, "--out", str(Path(tmp) / f"out-limits-{n}")],
        }
        walls: dict[str, dict[int, list[float]]] = {c: {n: [] for n in SIZES} for c in commands}
        cpus: dict[str, dict[int, list[float]]] = {c: {n: [] for n in SIZES} for c in commands}
        phases: dict[str, dict[int, list[dict[str, float]]]] = {c: {n: [] for n in SIZES} for c in commands}
        trades: dict[str, dict[int, int]] = {c: {} for c in commands}
        for i in range(repeats + 1):  # round 0 warms the page cache and the .pyc files, not counted
            for n in SIZES:
                for name, cmd in commands.items():
                    wall, cpu, out = _timed(cmd(n), env)
                    trades[name][n] = _trades(out)
                    if i:
                        walls[name][n].append(wall)
                        cpus[name][n].append(cpu)
                        phases[name][n].append(_phases(out))
            progress(f"  round {i}/{repeats}" + (" (warm-up)" if not i else ": ") + ", ".join(
                f"{c} {n:,} {walls[c][n][-1]:.2f} s" for c in commands for n in SIZES if i))
    small, big = SIZES
    med = {c: {n: statistics.median(walls[c][n]) for n in SIZES} for c in commands}
    med_phases = {c: {n: {k: statistics.median(p[k] for p in phases[c][n]) for k in phases[c][n][0]}
                      for n in SIZES} for c in commands}
    # The big and small runs of one round ran minutes apart at most: their difference is paired, and
    # the median of the differences shrugs off a round slowed by another process on the machine.
    def marginal_of(samples: dict[str, dict[int, list[float]]]) -> dict[str, float]:
        return {c: (big - small) / statistics.median(b - a for a, b in zip(samples[c][small], samples[c][big],
                                                                            strict=True))
                for c in commands}

    marginal, marginal_cpu = marginal_of(walls), marginal_of(cpus)
    return {"sizes": SIZES, "repeats": repeats, "wall_s": med, "phases_s": med_phases, "samples": walls,
            "cpu_samples": cpus, "trades": trades, "marginal_bars_per_s": marginal,
            "marginal_cpu_bars_per_s": marginal_cpu,
            "ratio": marginal["marketflow"] / marginal["backtesting_py"],
            "ratio_cpu": marginal_cpu["marketflow"] / marginal_cpu["backtesting_py"],
            "load": os.getloadavg()}


def render(r: dict[str, Any], when: str) -> str:
    small, big = r["sizes"]
    mf, bt = r["phases_s"]["marketflow"], r["phases_s"]["backtesting_py"]
    wall = r["wall_s"]
    report_share = mf[big]["report"] / wall["marketflow"][big] * 100
    report_marginal = (mf[big]["report"] - mf[small]["report"]) / (wall["marketflow"][big]
                                                                   - wall["marketflow"][small]) * 100

    def row(name: str, p: dict[int, dict[str, float]], key: str) -> str:
        d = p[big][key] - p[small][key]
        return f"| {name} | {p[small][key]:.3f} | {p[big][key]:.3f} | {d:.3f} |"

    def other(c: str, p: dict[int, dict[str, float]]) -> str:
        vals = [wall[c][n] - sum(p[n].values()) for n in (small, big)]
        return f"| {c}: start, imports, exit (the rest) | {vals[0]:.3f} | {vals[1]:.3f} | {vals[1] - vals[0]:.3f} |"

    lines = [
        "## Replay as a whole process",
        "",
        f"Measured {when} UTC (load average {r['load'][0]:.2f} on a shared machine). `marketflow replay` and "
        "`python -m benchmarks.backtesting_process` (pandas `read_csv`, backtesting.py 0.6.6 "
        "`FractionalBacktest.run()`) as fresh processes on the same headerless CSV: the bundled BTCUSDT 1m "
        f"sample repeated to {small:,} and {big:,} bars (times shifted), `sma_cross` 10/20 long-only, cash 10000, "
        "commission 0.002, no loss or drawdown limit (`--risk max_drawdown_pct=0 daily_loss_pct=0 loss_streak=0`); "
        f"both make {r['trades']['marketflow'][big]:,} / {r['trades']['backtesting_py'][big]:,} trades at "
        f"{big:,} bars. Median of {r['repeats']} interleaved rounds (after one warm-up round); each process "
        "prints its own phases.",
        "",
        f"| seconds (median) | {small:,} bars | {big:,} bars | difference |",
        "|---|---:|---:|---:|",
        f"| marketflow: whole process | {wall['marketflow'][small]:.3f} | {wall['marketflow'][big]:.3f} | "
        f"{wall['marketflow'][big] - wall['marketflow'][small]:.3f} |",
        row("marketflow: load (sha256, read, check)", mf, "load"),
        row("marketflow: replay (the pipeline)", mf, "replay"),
        row("marketflow: report (summary, CSVs, HTML)", mf, "report"),
        other("marketflow", mf),
        f"| backtesting.py: whole process | {wall['backtesting_py'][small]:.3f} | {wall['backtesting_py'][big]:.3f} | "
        f"{wall['backtesting_py'][big] - wall['backtesting_py'][small]:.3f} |",
        row("backtesting.py: load (pandas read_csv, DataFrame)", bt, "load"),
        row("backtesting.py: `bt.run()`", bt, "run"),
        other("backtesting_py", bt),
        "",
        f"- Marginal rate (bars added over the median of the rounds' paired wall-time differences): marketflow "
        f"**{r['marginal_bars_per_s']['marketflow']:,.0f} bars/s**, backtesting.py "
        f"**{r['marginal_bars_per_s']['backtesting_py']:,.0f} bars/s**: **{r['ratio']:.2f}x** "
        "(target: at least 2x, aim 2.5x).",
        f"- The same on CPU time (user + system of each process, less sensitive to waiting for a core): "
        f"marketflow {r['marginal_cpu_bars_per_s']['marketflow']:,.0f} bars/s, backtesting.py "
        f"{r['marginal_cpu_bars_per_s']['backtesting_py']:,.0f} bars/s: **{r['ratio_cpu']:.2f}x**.",
        f"- The same replay with the default risk limits (`marketflow_limits`: the 50 % drawdown limit sets "
        f"REDUCING, {r['trades']['marketflow_limits'][big]:,} trades at {big:,} bars, not the same backtest): "
        f"**{r['marginal_bars_per_s']['marketflow_limits']:,.0f} bars/s**, "
        f"{r['marginal_bars_per_s']['marketflow_limits'] / r['marginal_bars_per_s']['backtesting_py']:.2f}x; "
        f"its report {r['phases_s']['marketflow_limits'][big]['report'] / wall['marketflow_limits'][big] * 100:.1f} % "
        "of its process.",
        f"- Report writing: {report_share:.1f} % of the whole marketflow process at {big:,} bars, "
        f"{report_marginal:.1f} % of the marginal time (target: at most 15 %).",
        "",
    ]
    return "\n".join(lines)
