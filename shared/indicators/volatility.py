"""True range, ATR (Wilder) and Bollinger bands (population sigma) with TA-Lib's conventions."""

from __future__ import annotations

import math

from .base import Indicator
from .moving import SMA


class TrueRange(Indicator):
    """max(h-l, |h-prev_close|, |l-prev_close|); undefined on the first bar, as in TA-Lib."""

    __slots__ = ("_prev_close", "value")
    NAME = "trange"

    def __init__(self) -> None:
        self._prev_close: float | None = None
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        prev = self._prev_close
        self._prev_close = close
        if prev is None:
            return None
        tr = high - low
        a = abs(prev - high)
        if a > tr:
            tr = a
        b = abs(prev - low)
        if b > tr:
            tr = b
        self.value = tr
        return tr


class ATR(Indicator):
    """Average true range: mean of the first n true ranges, then Wilder's (atr*(n-1)+tr)/n."""

    __slots__ = ("_count", "_seed_sum", "_tr", "period", "value")
    NAME = "atr"

    def __init__(self, period: int = 14) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self._tr = TrueRange()
        self._count = 0
        self._seed_sum = 0.0
        self.value: float | None = None

    def snapshot(self) -> dict[str, object]:
        snap = super().snapshot()
        snap["state"]["_tr"] = self._tr.snapshot()
        return snap

    def restore(self, snap: dict[str, object]) -> ATR:  # type: ignore[override]
        super().restore(snap)  # type: ignore[arg-type]
        self._tr = TrueRange.from_snapshot(self._tr)  # type: ignore[arg-type]
        return self

    def update(self, high: float, low: float, close: float) -> float | None:
        tr = self._tr.update(high, low, close)
        if tr is None:
            return None
        value = self.value
        if value is not None:
            value = (value * (self.period - 1) + tr) / self.period
            self.value = value
            return value
        self._seed_sum += tr
        self._count += 1
        if self._count == self.period:
            self.value = self._seed_sum / self.period
        return self.value


class BollingerBands(Indicator):
    """Middle = SMA(n); bands = middle +- k*sigma, sigma the population standard deviation.

    Sigma comes from sums of deviations from a shift K near the window mean (no catastrophic
    cancellation at BTC prices); K and the sums are rebuilt exactly from the window once every n
    updates, so the cost stays O(1) amortized and rounding error cannot drift.
    """

    __slots__ = ("_buf", "_count", "_k", "_pos", "_s1", "_s2", "_sma", "nbdev_dn", "nbdev_up", "period",
                 "value")
    NAME = "bbands"

    def __init__(self, period: int = 20, nbdev_up: float = 2.0, nbdev_dn: float = 2.0) -> None:
        if period < 2:
            raise ValueError("period must be >= 2")
        self.period = period
        self.nbdev_up = nbdev_up
        self.nbdev_dn = nbdev_dn
        self._sma = SMA(period)
        self._buf: list[float] = [0.0] * period
        self._pos = 0
        self._count = 0
        self._k = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self.value: tuple[float, float, float] | None = None

    def snapshot(self) -> dict[str, object]:
        snap = super().snapshot()
        snap["state"]["_sma"] = self._sma.snapshot()
        return snap

    def restore(self, snap: dict[str, object]) -> BollingerBands:  # type: ignore[override]
        super().restore(snap)  # type: ignore[arg-type]
        self._sma = SMA.from_snapshot(self._sma)  # type: ignore[arg-type]
        return self

    def update(self, x: float) -> tuple[float, float, float] | None:
        n = self.period
        pos = self._pos
        if self._count == 0:
            self._k = x
        if self._count >= n:
            old = self._buf[pos] - self._k
            self._s1 -= old
            self._s2 -= old * old
        d = x - self._k
        self._s1 += d
        self._s2 += d * d
        self._buf[pos] = x
        self._count += 1
        pos += 1
        if pos == n:
            pos = 0
            self._rebase()
        self._pos = pos
        middle = self._sma.update(x)
        if middle is None:
            return None
        m1 = self._s1 / n
        var = self._s2 / n - m1 * m1
        sigma = math.sqrt(var) if var > 0.0 else 0.0
        self.value = (middle + self.nbdev_up * sigma, middle, middle - self.nbdev_dn * sigma)
        return self.value

    def _rebase(self) -> None:
        """Recompute the shifted sums exactly around the current window's mean."""
        buf = self._buf if self._count >= self.period else self._buf[: self._count]
        total = 0.0
        for v in buf:
            total += v
        k = total / len(buf)
        s1 = s2 = 0.0
        for v in buf:
            d = v - k
            s1 += d
            s2 += d * d
        self._k, self._s1, self._s2 = k, s1, s2
