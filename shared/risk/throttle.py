"""Sliding-window order-rate limiter (the Hummingbot throttler idea, reduced to what risk needs).

A log of send times per key; a new order is allowed while fewer than `limit` lie inside the last
`window_ms`. Times are event times, so a replay throttles exactly as live trading would, and the
log is part of the engine snapshot so a restart cannot reopen a full window.
"""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """Order times of one key inside the window; limit 0 disables it."""

    __slots__ = ("limit", "times", "window_ms")

    def __init__(self, limit: int, window_ms: int = 60_000) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.times: deque[int] = deque()

    def count(self, now: int) -> int:
        times = self.times
        edge = now - self.window_ms
        while times and times[0] <= edge:
            times.popleft()
        return len(times)

    def allows(self, now: int) -> bool:
        return self.limit <= 0 or self.count(now) < self.limit

    def record(self, now: int) -> None:
        if self.limit > 0:  # a disabled window keeps no log (it would only grow)
            self.times.append(now)


class RateLimiter:
    """One global window and one per symbol."""

    def __init__(self, global_limit: int, symbol_limit: int, window_ms: int = 60_000) -> None:
        self.global_window = SlidingWindow(global_limit, window_ms)
        self.symbol_limit = symbol_limit
        self.window_ms = window_ms
        self.symbols: dict[str, SlidingWindow] = {}

    def _symbol(self, symbol: str) -> SlidingWindow:
        w = self.symbols.get(symbol)
        if w is None:
            w = self.symbols[symbol] = SlidingWindow(self.symbol_limit, self.window_ms)
        return w

    def blocked(self, symbol: str, now: int) -> int:
        """0 when an order may go now; 1 when the global window is full; 2 when the symbol's is."""
        g = self.global_window
        if g.limit > 0 and g.count(now) >= g.limit:
            return 1
        if self.symbol_limit > 0:
            w = self.symbols.get(symbol)
            if w is not None and w.count(now) >= self.symbol_limit:
                return 2
        return 0

    def record(self, symbol: str, now: int) -> None:
        self.global_window.record(now)
        if self.symbol_limit > 0:
            self._symbol(symbol).record(now)

    def snapshot(self) -> dict[str, list[int]]:
        snap = {"*": list(self.global_window.times)}
        snap.update({s: list(w.times) for s, w in self.symbols.items() if w.times})
        return snap

    def restore(self, snap: dict[str, list[int]]) -> None:
        self.global_window.times = deque(snap.get("*", ()))
        self.symbols = {}
        for symbol, times in snap.items():
            if symbol != "*":
                self._symbol(symbol).times = deque(times)
