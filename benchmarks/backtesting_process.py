"""The backtesting.py contender of the `replay_process` bench, run as its own process:
`python -m benchmarks.backtesting_process FILE.csv` reads a headerless Binance kline CSV with pandas,
runs backtesting.py 0.6.6's `FractionalBacktest.run()` with the long-only `sma_cross` 10/20 the
replay runs, and prints one line `time load X s, run Y s` (the phases) and the trade count."""

from __future__ import annotations

import os
import sys
import time
import warnings


def main(path: str) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    started = time.perf_counter()
    from benchmarks.reference import bench_backtest, frame_of_csv

    df = frame_of_csv(path)
    loaded = time.perf_counter()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = bench_backtest(df)
        stats = bt.run()
    done = time.perf_counter()
    print(f"time load {loaded - started:.3f} s, run {done - loaded:.3f} s")
    print(f"trades {stats['# Trades']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
