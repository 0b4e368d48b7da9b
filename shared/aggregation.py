"""Trades to bars: the candle a strategy sees when the market data is a trade stream.

A bar is emitted when the first trade of a later interval arrives, which is also the first
moment a live system can know the bar has closed. Intervals without a trade produce no bar (there
is no price to report), so the strategies count traded intervals, as they count bars.
"""

from __future__ import annotations

from shared.market import INTERVAL_MS, Bar


class BarAggregator:
    """Builds closed bars of one interval from time-ordered trades of one symbol."""

    def __init__(self, symbol: str, interval: str = "1m") -> None:
        try:
            self.interval_ms = INTERVAL_MS[interval]
        except KeyError:
            raise ValueError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_MS)}") from None
        self.symbol = symbol
        self.interval = interval
        self._start = -1
        self._o = self._h = self._l = self._c = 0.0
        self._v = 0.0

    def on_trade(self, price: float, qty: float, time: int) -> Bar | None:
        """Add one trade; returns the bar it closed, if it is the first trade of a new interval."""
        start = time - time % self.interval_ms
        if start == self._start:
            if price > self._h:
                self._h = price
            elif price < self._l:
                self._l = price
            self._c = price
            self._v += qty
            return None
        if start < self._start:
            raise ValueError(f"trade at {time} is older than the open bar starting {self._start}")
        closed = self.flush()
        self._start = start
        self._o = self._h = self._l = self._c = price
        self._v = qty
        return closed

    def flush(self) -> Bar | None:
        """The bar in progress, if any (at the end of a finite replay)."""
        if self._start < 0:
            return None
        return Bar(self.symbol, self.interval, self._start, self._start + self.interval_ms - 1, self._o, self._h,
                   self._l, self._c, self._v)
