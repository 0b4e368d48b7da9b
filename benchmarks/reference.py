"""backtesting.py's side of the parity tests and the benches: the long-only SMA cross that
MarketFlow's `sma_cross` is held against, and the OHLCV frames backtesting.py reads.

Module level so that `Backtest.optimize`'s worker processes can unpickle the strategy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover
from backtesting.test import SMA

from shared.market import Bar


class SmaCrossLongOnly(Strategy):
    """Buy all equity on a strict cross up when flat, close on a cross down; the averages are
    class attributes, so `Backtest.run(fast=..., slow=...)` and `optimize` can set them."""

    fast = 10
    slow = 20

    def init(self) -> None:
        self.sma_fast = self.I(SMA, self.data.Close, self.fast)
        self.sma_slow = self.I(SMA, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.sma_fast, self.sma_slow):
            if not self.position:
                self.buy()
        elif crossover(self.sma_slow, self.sma_fast) and self.position.is_long:
            self.position.close()


def bench_backtest(df: pd.DataFrame) -> FractionalBacktest:
    """The benches' backtest of `df`: cash 10,000, commission 0.002, satoshi units, and a trade
    still open at the end left open (`finalize_trades=False`), as the replay leaves it."""
    return FractionalBacktest(df, SmaCrossLongOnly, fractional_unit=1e-8, cash=10_000, commission=0.002,
                              finalize_trades=False)


def frame_of_bars(bars: Sequence[Bar]) -> pd.DataFrame:
    """OHLCV floats indexed by the bar open time (UTC, tz-naive), from decoded bars."""
    return pd.DataFrame(
        {"Open": [b.open for b in bars], "High": [b.high for b in bars], "Low": [b.low for b in bars],
         "Close": [b.close for b in bars], "Volume": [b.volume for b in bars]},
        index=pd.to_datetime([b.open_time for b in bars], unit="ms"))


def frame_of_csv(path: str | Path) -> pd.DataFrame:
    """The same frame read by pandas from a headerless Binance kline CSV (what a backtesting.py
    user's script does)."""
    raw = pd.read_csv(path, header=None, usecols=range(6))
    df = pd.DataFrame({"Open": raw[1], "High": raw[2], "Low": raw[3], "Close": raw[4], "Volume": raw[5]})
    df.index = pd.to_datetime(raw[0], unit="ms")
    return df
