"""Moving averages with TA-Lib's exact conventions (TA_COMPATIBILITY_DEFAULT, unstable period 0)."""

from __future__ import annotations

from .base import Indicator


class SMA(Indicator):
    """Simple moving average. Running sum updated in TA-Lib's order: add new, emit, drop oldest."""

    __slots__ = ("_buf", "_count", "_pos", "_sum", "period", "value")
    NAME = "sma"

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self._buf: list[float] = [0.0] * period
        self._pos = 0
        self._count = 0
        self._sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        pos = self._pos
        self._buf[pos] = x
        self._sum += x
        self._count += 1
        pos += 1
        if pos == self.period:
            pos = 0
        self._pos = pos
        if self._count >= self.period:
            self.value = self._sum / self.period
            # After emitting, drop the oldest value of this window (the slot written next).
            self._sum -= self._buf[pos]
        return self.value


class EMA(Indicator):
    """Exponential moving average, k = 2/(n+1), seeded with the simple mean of the first n values."""

    __slots__ = ("_count", "_seed_sum", "k", "period", "value")
    NAME = "ema"

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("period must be >= 1")
        self.period = period
        self.k = 2.0 / (period + 1)
        self._count = 0
        self._seed_sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        value = self.value
        if value is not None:
            value = ((x - value) * self.k) + value
            self.value = value
            return value
        self._seed_sum += x
        self._count += 1
        if self._count == self.period:
            self.value = self._seed_sum / self.period
        return self.value


class SMAPair(Indicator):
    """SMA(fast) and SMA(slow) of one series over one shared window: a crossover's two averages in
    one update per bar instead of two. Each keeps TA-Lib's running-sum rounding (add new, emit,
    drop oldest), so `value` is exactly (SMA(fast), SMA(slow)) as two SMAs give it: None until the
    fast one is ready, then (fast, None) until the slow one is."""

    __slots__ = ("_buf", "_count", "_fast_sum", "_pos", "_slow_sum", "fast", "slow", "value")
    NAME = "sma_pair"

    def __init__(self, fast: int, slow: int) -> None:
        if not 1 <= fast <= slow:
            raise ValueError("periods must satisfy 1 <= fast <= slow")
        self.fast = fast
        self.slow = slow
        self._buf: list[float] = [0.0] * slow  # the slow window; the fast one is its newest part
        self._pos = 0
        self._count = 0
        self._fast_sum = 0.0
        self._slow_sum = 0.0
        self.value: tuple[float, float | None] | None = None

    def update(self, x: float) -> tuple[float, float | None] | None:
        buf = self._buf
        pos = self._pos
        buf[pos] = x
        fast_sum = self._fast_sum + x
        slow_sum = self._slow_sum + x
        slow = self.slow
        pos += 1
        if pos == slow:
            pos = 0
        self._pos = pos  # now the slot of the slow window's oldest value
        fast = self.fast
        count = self._count
        if count < slow:  # warming up
            count += 1
            self._count = count
            if count < fast:
                self._fast_sum = fast_sum
                self._slow_sum = slow_sum
                return None
            if count < slow:
                self._fast_sum = fast_sum - buf[pos - fast]  # a negative index wraps around the ring
                self._slow_sum = slow_sum
                self.value = (fast_sum / fast, None)
                return self.value
        # After emitting, each sum drops the oldest value of its window (written next for slow).
        self._fast_sum = fast_sum - buf[pos - fast]
        self._slow_sum = slow_sum - buf[pos]
        self.value = value = (fast_sum / fast, slow_sum / slow)
        return value


class EMAPair(Indicator):
    """EMA(fast) and EMA(slow) of one series with SMAPair's interface: None until the fast one is
    ready, then (fast, None) until the slow one is, then (fast, slow)."""

    __slots__ = ("fast", "slow", "value")
    NAME = "ema_pair"

    def __init__(self, fast: int, slow: int) -> None:
        self.fast = EMA(fast)
        self.slow = EMA(slow)
        self.value: tuple[float, float | None] | None = None

    def snapshot(self) -> dict[str, object]:
        snap = super().snapshot()
        snap["state"]["fast"] = self.fast.snapshot()
        snap["state"]["slow"] = self.slow.snapshot()
        return snap

    def restore(self, snap: dict[str, object]) -> EMAPair:
        super().restore(snap)
        self.fast = EMA.from_snapshot(self.fast)  # type: ignore[arg-type]
        self.slow = EMA.from_snapshot(self.slow)  # type: ignore[arg-type]
        return self

    def update(self, x: float) -> tuple[float, float | None] | None:
        f = self.fast.update(x)
        s = self.slow.update(x)
        if f is None:
            return None
        self.value = (f, s)
        return self.value
