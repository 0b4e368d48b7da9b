"""Replay throughput: the full pipeline, the signal handler alone, backtesting.py and a bare loop.

All four run on the same bars: the bundled BTCUSDT 1m sample repeated (times shifted, so the
series stays strictly increasing) to at least 100,000 bars, written once to a CSV file. The full
pipeline is timed from the file (decode included) to the last fill; backtesting.py is timed on its
`run()` alone, on a DataFrame built beforehand (its decode is not counted, which favours it).
"""

from __future__ import annotations

import csv
import gc
import io
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.samples import btcusdt_1m_paths

MIN_BARS = 100_000


def build_file(directory: Path, min_bars: int = MIN_BARS) -> tuple[Path, int]:
    """Write the repeated sample to one headerless kline CSV; returns its path and bar count."""
    rows: list[list[str]] = []
    for path in btcusdt_1m_paths():
        with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as fh:
            rows.extend(csv.reader(io.TextIOWrapper(fh, "ascii")))
    span = int(rows[-1][0]) - int(rows[0][0]) + 60_000
    copies = -(-min_bars // len(rows))
    out = directory / "BTCUSDT-1m-bench.csv"
    with out.open("w", newline="") as fh:
        w = csv.writer(fh)
        for c in range(copies):
            shift = c * span
            for r in rows:
                w.writerow([int(r[0]) + shift, *r[1:6], int(r[6]) + shift, *r[7:]])
    return out, copies * len(rows)


def bare_loop(path: Path) -> int:
    """The practical Python ceiling: parse each row and keep two running sums."""
    s_close = 0.0
    s_vol = 0.0
    n = 0
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            s_close += float(row[4])
            s_vol += float(row[5])
            n += 1
    return n


def full_pipeline(path: Path, params: dict[str, int] | None = None) -> int:
    from shared.data import read_klines
    from shared.pipeline.replay import run_replay

    series = read_klines([path])
    result = run_replay(series.bars, "sma_cross", params or {"fast": 10, "slow": 20}, cash=10_000,
                        commission=0.002)
    return len(result.bars)


def make_signal_only(path: Path) -> Callable[[], int]:
    from shared.data import read_klines
    from shared.pipeline.signals import SignalHandler

    bars = read_klines([path]).bars

    def run() -> int:
        handler = SignalHandler("sma_cross", {"fast": 10, "slow": 20})
        on_bar = handler.on_bar
        for bar in bars:
            on_bar(bar)
        return len(bars)

    return run


def make_backtesting(path: Path) -> Callable[[], int]:
    import warnings

    from benchmarks.reference import bench_backtest, frame_of_bars
    from shared.data import read_klines

    df = frame_of_bars(read_klines([path]).bars)

    def run() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = bench_backtest(df)
            bt.run()
        return len(df)

    return run


def _median_rate(fn: Callable[[], int], samples: list[float]) -> None:
    gc.collect()  # every contender starts on a collected heap, none pays for another's garbage
    t0 = time.perf_counter()
    n = fn()
    samples.append(n / (time.perf_counter() - t0))


def run(repeats: int = 5, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Median bars/s of each contender over `repeats` interleaved rounds, and the ratios."""
    with tempfile.TemporaryDirectory() as tmp:
        path, n_bars = build_file(Path(tmp))
        contenders: dict[str, Callable[[], int]] = {
            "bare_loop": lambda: bare_loop(path),
            "full_pipeline": lambda: full_pipeline(path),
            # The same path with ~25x fewer signals: separates the per-bar cost from the per-decision
            # cost (each signal makes a signal, an intent, a fill report and two risk checks).
            "full_pipeline_sparse": lambda: full_pipeline(path, {"fast": 100, "slow": 400}),
            "signal_handler": make_signal_only(path),
            "backtesting_py": make_backtesting(path),
        }
        rates: dict[str, list[float]] = {k: [] for k in contenders}
        for name, fn in contenders.items():  # warm-up round, not counted
            fn()
            progress(f"  warm-up {name} done")
        for i in range(repeats):
            for name, fn in contenders.items():
                _median_rate(fn, rates[name])
            progress(f"  round {i + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "bars": n_bars,
        "repeats": repeats,
        "bars_per_s": med,
        "samples": rates,
        "ratio_pipeline_vs_backtesting": med["full_pipeline"] / med["backtesting_py"],
        "ratio_bare_loop_vs_pipeline": med["bare_loop"] / med["full_pipeline"],
        "load": os.getloadavg(),
    }
