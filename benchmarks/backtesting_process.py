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
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover
    from backtesting.test import SMA

    raw = pd.read_csv(path, header=None, usecols=range(6))
    df = pd.DataFrame({"Open": raw[1], "High": raw[2], "Low": raw[3], "Close": raw[4], "Volume": raw[5]})
    df.index = pd.to_datetime(raw[0], unit="ms")
    loaded = time.perf_counter()

    class SmaCrossLongOnly(Strategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, 10)
            self.slow = self.I(SMA, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy()
            elif crossover(self.slow, self.fast) and self.position.is_long:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(df, SmaCrossLongOnly, fractional_unit=1e-8, cash=10_000, commission=0.002,
                                finalize_trades=False)
        stats = bt.run()
    done = time.perf_counter()
    print(f"time load {loaded - started:.3f} s, run {done - loaded:.3f} s")
    print(f"trades {stats['# Trades']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
