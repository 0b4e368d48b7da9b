"""True range, ATR (Wilder) and Bollinger bands (population sigma) with TA-Lib's conventions."""

from __future__ import annotations

import math

from .base import Indicator
from .moving import SMA

_SCALE_BITS = 100
_SCALE = float(2**_SCALE_BITS)


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

    def restore(self, snap: dict[str, object]) -> ATR:
        super().restore(snap)
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

    Sigma comes from exact integer sums: each value is scaled by 2**100 to an integer (exact for
    any |x| >= 2**-48, i.e. every real price), the window's sum and sum of squares are kept as
    Python ints, and the variance is one correctly rounded integer division. Float running sums
    drift and cancel: a window of 20 equal closes right after a jump came out with sigma ~1e-7
    instead of 0 (TA-Lib gives 0). Exact sums cost O(1) per update and never need rebuilding.
    The middle band is the SMA with TA-Lib's own running-sum rounding, so it equals SMA(n).
    """

    __slots__ = ("_buf", "_count", "_den", "_pos", "_s1", "_s2", "_sma", "nbdev_dn", "nbdev_up", "period",
                 "value")
    NAME = "bbands"

    def __init__(self, period: int = 20, nbdev_up: float = 2.0, nbdev_dn: float = 2.0) -> None:
        if period < 2:
            raise ValueError("period must be >= 2")
        self.period = period
        self.nbdev_up = nbdev_up
        self.nbdev_dn = nbdev_dn
        self._sma = SMA(period)
        self._buf: list[int] = [0] * period  # scaled values of the window (0 before it fills)
        self._pos = 0
        self._count = 0
        self._s1 = 0  # sum of the scaled window
        self._s2 = 0  # sum of their squares
        # var = (n*s2 - s1**2) / (n**2 * SCALE**2)
        self._den = (period * period) << (2 * _SCALE_BITS)
        self.value: tuple[float, float, float] | None = None

    def snapshot(self) -> dict[str, object]:
        snap = super().snapshot()
        snap["state"]["_sma"] = self._sma.snapshot()
        return snap

    def restore(self, snap: dict[str, object]) -> BollingerBands:
        super().restore(snap)
        self._sma = SMA.from_snapshot(self._sma)  # type: ignore[arg-type]
        return self

    def update(self, x: float) -> tuple[float, float, float] | None:
        scaled = int(x * _SCALE)  # exact: multiplying by a power of two only moves the exponent
        pos = self._pos
        buf = self._buf
        old = buf[pos]
        buf[pos] = scaled
        s1 = self._s1 + scaled - old
        s2 = self._s2 + scaled * scaled - old * old
        self._s1 = s1
        self._s2 = s2
        pos += 1
        self._pos = 0 if pos == self.period else pos
        self._count += 1
        middle = self._sma.update(x)
        if middle is None:
            return None
        var = (self.period * s2 - s1 * s1) / self._den  # int / int: correctly rounded
        sigma = math.sqrt(var) if var > 0.0 else 0.0
        self.value = (middle + self.nbdev_up * sigma, middle, middle - self.nbdev_dn * sigma)
        return self.value
