"""The backtesting.py contender of the `sweep` bench, run as its own process:
`python -m benchmarks.backtesting_optimize FILE.csv PROCESSES` reads a headerless Binance kline CSV
with pandas and runs backtesting.py 0.6.6's `Backtest.optimize` over the grid `marketflow sweep`
gets (fast 5..30 step 5, slow 20..100 step 10, fast < slow) of the long-only `sma_cross`, with
`PROCESSES` worker processes (backtesting.py's own pool, forked); prints `time load X s, sweep Y s`,
`combinations N` and `best fast=F slow=S`; with a third argument, writes each combination's return
there as JSON (`{"F,S": return_pct}`), for the bench to hold beside `marketflow sweep`'s."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import warnings
from typing import Any

FAST = range(5, 31, 5)
SLOW = range(20, 101, 10)


def main(path: str, processes: int, dump: str | None = None) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    started = time.perf_counter()
    import backtesting

    from benchmarks.reference import bench_backtest, frame_of_csv

    def pool(_processes: int | None = None, initializer: Any = None, initargs: tuple[Any, ...] = ()) -> Any:
        return multiprocessing.get_context("fork").Pool(processes, initializer, initargs)

    backtesting.Pool = pool  # the documented override (backtesting/__init__.py): this many workers

    df = frame_of_csv(path)
    loaded = time.perf_counter()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = bench_backtest(df)
        stats, heatmap = bt.optimize(fast=FAST, slow=SLOW, constraint=lambda p: p.fast < p.slow,
                                     maximize="Return [%]", return_heatmap=True)
    done = time.perf_counter()
    print(f"time load {loaded - started:.3f} s, sweep {done - loaded:.3f} s")
    print(f"combinations {len(heatmap)}")
    print(f"best fast={stats._strategy.fast} slow={stats._strategy.slow}")
    if dump is not None:
        with open(dump, "w") as fh:
            json.dump({f"{f},{s}": float(v) for (f, s), v in heatmap.items()}, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
