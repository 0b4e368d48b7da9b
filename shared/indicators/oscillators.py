"""RSI (Wilder) and MACD with TA-Lib's seeding."""

from __future__ import annotations

from .base import Indicator, is_zero


class RSI(Indicator):
    """Relative strength index, Wilder smoothing; gains and losses seeded with the simple mean of
    the first n changes, first value after n+1 prices (TA-Lib index n)."""

    __slots__ = ("_count", "_gain", "_loss", "_prev", "period", "value")
    NAME = "rsi"

    def __init__(self, period: int = 14) -> None:
        if period < 2:
            raise ValueError("period must be >= 2")
        self.period = period
        self._count = 0
        self._prev = 0.0
        self._gain = 0.0
        self._loss = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        count = self._count
        self._count = count + 1
        if count == 0:
            self._prev = x
            return None
        diff = x - self._prev
        self._prev = x
        n = self.period
        if count < n:
            if diff < 0:
                self._loss -= diff
            else:
                self._gain += diff
            return None
        if count == n:
            if diff < 0:
                self._loss -= diff
            else:
                self._gain += diff
            self._loss /= n
            self._gain /= n
        else:
            loss = self._loss * (n - 1)
            gain = self._gain * (n - 1)
            if diff < 0:
                loss -= diff
            else:
                gain += diff
            self._loss = loss / n
            self._gain = gain / n
        total = self._gain + self._loss
        self.value = 0.0 if is_zero(total) else 100.0 * (self._gain / total)
        return self.value


class MACD(Indicator):
    """MACD line, signal and histogram with TA-Lib's quirk: both EMAs start at index slow-1, the fast
    one seeded with the mean of the `fast` closes ending there; the signal is an EMA of the line
    seeded with the mean of its first `signal` values. Value is (macd, signal, hist) or None."""

    __slots__ = ("_count", "_fast", "_line_seed", "_seed_buf", "_sig", "_slow", "fast_period", "k_fast",
                 "k_sig", "k_slow", "signal_period", "slow_period", "value")
    NAME = "macd"

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        if slow < fast:
            fast, slow = slow, fast  # TA-Lib swaps them too
        if fast < 2 or signal < 1:
            raise ValueError("fast must be >= 2 and signal >= 1")
        self.fast_period = fast
        self.slow_period = slow
        self.signal_period = signal
        self.k_fast = 2.0 / (fast + 1)
        self.k_slow = 2.0 / (slow + 1)
        self.k_sig = 2.0 / (signal + 1)
        self._count = 0
        self._seed_buf: list[float] = []
        self._fast = 0.0
        self._slow = 0.0
        self._line_seed: list[float] = []
        self._sig: float | None = None
        self.value: tuple[float, float, float] | None = None

    def update(self, x: float) -> tuple[float, float, float] | None:
        self._count += 1
        if self._count < self.slow_period:
            self._seed_buf.append(x)
            return None
        if self._count == self.slow_period:
            buf = self._seed_buf
            buf.append(x)
            total = 0.0
            for v in buf:
                total += v
            self._slow = total / self.slow_period
            total = 0.0
            for v in buf[self.slow_period - self.fast_period:]:
                total += v
            self._fast = total / self.fast_period
            self._seed_buf = []
        else:
            self._fast = ((x - self._fast) * self.k_fast) + self._fast
            self._slow = ((x - self._slow) * self.k_slow) + self._slow
        line = self._fast - self._slow
        sig = self._sig
        if sig is None:
            self._line_seed.append(line)
            if len(self._line_seed) < self.signal_period:
                return None
            total = 0.0
            for v in self._line_seed:
                total += v
            sig = total / self.signal_period
            self._line_seed = []
        else:
            sig = ((line - sig) * self.k_sig) + sig
        self._sig = sig
        self.value = (line, sig, line - sig)
        return self.value
