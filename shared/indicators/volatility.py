"""True range, ATR (Wilder) and Bollinger bands (population sigma) with TA-Lib's conventions."""

from __future__ import annotations

import math

from .base import Indicator
from .moving import SMA

# TA-Lib 0.8.1's re-anchoring thresholds (var.c / the SMA path of bbands.c).
_STALE_RATIO = 0.000001  # re-anchor when variance < this * mean squared deviation from the shift
_OUTLIER_RATIO = 1000000.0  # ... or when the departing squared deviation > this * what is left
_ZERO_RATIO = 0.000000000001  # after re-anchoring, a variance under this * mean square is 0
_RESEED_WINDOWS = 32  # ... and at least every 32 windows


def _fma(a: float, b: float, c: float) -> float:
    """a*b + c rounded once, as the FMA instruction does (Python 3.11 has no math.fma).

    Exact rational arithmetic on the binary fractions, then one int/int true division, which
    CPython rounds correctly. Non-finite operands fall back to the plain expression.
    """
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    na, da = a.as_integer_ratio()  # denominators are powers of two
    nb, db = b.as_integer_ratio()
    nc, dc = c.as_integer_ratio()
    num = na * nb * dc + nc * da * db
    if num == 0:
        # An exact zero: -0.0 only when both terms are zeros carrying a minus sign.
        return a * b + c if (a == 0.0 or b == 0.0) else 0.0
    try:
        return num / (da * db * dc)
    except OverflowError:
        return a * b + c  # beyond the float range: the plain expression gives the same +-inf


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

    Sigma is computed the way TA-Lib 0.8.1 computes it (the SMA fast path of `TA_BBANDS`, the same
    recurrence as `TA_VAR`, TA-Lib issues #117/#118/#202/#243), step for step, so the bands equal
    the oracle bit for bit rather than to within its rounding: an exact sigma differs from
    TA-Lib's by ~1.3e-9 at BTC's ~46,000 (1h sample), which no fixed absolute budget can absorb.

    The variance is a shifted-data (assumed-mean) running sum: with S1 = sum(x-K) and
    S2 = sum((x-K)**2) over the window, var = S2/n - (S1/n)**2. K starts at the first value of
    the series. After each output the departing value is taken out of S1/S2, and K is re-anchored
    on the window mean with a fresh two-pass over the window when the shift has gone stale
    (var < 1e-6 * S2/n, S2 taken after the removal), when the departing squared deviation
    exceeds 1e6 * S2 (an outlier leaving), or every 32*n outputs (the bundled 0.8.1 build has
    this trigger, not the later #434 one that measures against the peak S2). A re-anchored variance below
    1e-12 * S2/n is 0 (TA-Lib's only dead zone, #243; it also clamps negatives, #202), and
    sigma = sqrt(var) with no other guard. The re-anchoring pass costs O(n), but runs rarely
    (about every 32*n bars on real prices; on an exactly flat run, on every bar, as in TA-Lib),
    so an update is O(1) amortised.

    The middle band is the SMA with TA-Lib's own running-sum rounding, so it equals SMA(n).
    Bands: with nbdev_up == nbdev_dn, t = sigma*k and middle +- t. With different multipliers
    TA-Lib's build (an FMA clone picked at run time on x86-64 CPUs with FMA) rounds the upper
    band once, fma(sigma, up, middle), and the lower band twice, middle - sigma*dn; both are
    reproduced here.
    """

    __slots__ = ("_barsleft", "_buf", "_count", "_inv", "_pos", "_shift", "_sma", "_t1", "_t2",
                 "nbdev_dn", "nbdev_up", "period", "value")
    NAME = "bbands"

    def __init__(self, period: int = 20, nbdev_up: float = 2.0, nbdev_dn: float = 2.0) -> None:
        if period < 2:
            raise ValueError("period must be >= 2")
        self.period = period
        self.nbdev_up = nbdev_up
        self.nbdev_dn = nbdev_dn
        self._sma = SMA(period)
        self._inv = 1.0 / period  # TA-Lib multiplies by the reciprocal in the variance
        self._buf: list[float] = [0.0] * period  # the window, oldest at _pos once it is full
        self._pos = 0
        self._count = 0
        self._shift = 0.0  # K: the first value, later the window mean at each re-anchoring
        self._t1 = 0.0  # sum(x - K) over the window less its oldest value (between updates)
        self._t2 = 0.0  # sum((x - K)**2), likewise
        self._barsleft = _RESEED_WINDOWS * period  # outputs until the periodic re-anchoring
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
        period = self.period
        buf = self._buf
        pos = self._pos
        buf[pos] = x
        pos += 1
        if pos == period:
            pos = 0
        self._pos = pos  # now the slot of the window's oldest value
        count = self._count + 1
        self._count = count
        middle = self._sma.update(x)
        if count == 1:
            self._shift = x
        shift = self._shift
        d = x - shift
        t1 = self._t1 + d
        t2 = self._t2 + d * d
        if middle is None:
            self._t1 = t1
            self._t2 = t2
            return None

        inv = self._inv
        m1 = t1 * inv
        var = t2 * inv - m1 * m1
        # Take the oldest value out: the sums then hold the next window less its newest value.
        d = buf[pos] - shift
        t1 -= d
        dd = d * d
        t2 -= dd
        barsleft = self._barsleft - 1
        if var < _STALE_RATIO * (t2 * inv) or dd > _OUTLIER_RATIO * t2 or barsleft <= 0:
            var, t1, t2 = self._reanchor(pos)
            barsleft = _RESEED_WINDOWS * period
        self._t1 = t1
        self._t2 = t2
        self._barsleft = barsleft

        if var > 0.0:
            sigma = math.sqrt(var)
        elif var == 0.0:
            sigma = 0.0
        else:  # NaN (non-finite input): what C's sqrt returns; never a negative number here
            sigma = math.nan
        up = self.nbdev_up
        dn = self.nbdev_dn
        if up == dn:
            t = sigma * up
            self.value = (middle + t, middle, middle - t)
        else:
            self.value = (_fma(sigma, up, middle), middle, middle - sigma * dn)
        return self.value

    def _reanchor(self, oldest: int) -> tuple[float, float, float]:
        """Fresh two-pass over the window (oldest first): K = its mean, the variance recomputed
        and floored, and the sums returned with the oldest value already taken out."""
        buf = self._buf
        window = buf[oldest:] + buf[:oldest]
        inv = self._inv
        s = 0.0
        for v in window:
            s += v
        shift = s * inv
        t1 = 0.0
        t2 = 0.0
        for v in window:
            d = v - shift
            t1 += d
            t2 += d * d
        m1 = t1 * inv
        var = t2 * inv - m1 * m1
        if var < _ZERO_RATIO * (t2 * inv):
            var = 0.0
        d = window[0] - shift
        t1 -= d
        t2 -= d * d
        self._shift = shift
        return var, t1, t2
