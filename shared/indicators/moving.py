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
