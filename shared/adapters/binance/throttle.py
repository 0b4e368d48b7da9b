"""Request-weight and order-count budgets, kept under Binance's limits before anything is sent.

A small named part in the manner of Hummingbot's `AsyncThrottler`: every call names its cost
(request weight, orders placed) and `acquire` waits until each limit's current window has room
for it. The limits come from `exchangeInfo.rateLimits`; Binance counts them in fixed windows
(the `X-MBX-USED-WEIGHT-1M` counter restarts at each minute), so this counts in the same
windows on the server's clock. Each response's `X-MBX-USED-WEIGHT-(n)(unit)` and
`X-MBX-ORDER-COUNT-(n)(unit)` headers are the exchange's own count (including what other
processes on the same IP or account spent): `observe` raises the local count to them.

A 429 pauses every send until its `Retry-After` has passed (sending through it earns a 418
ban); a 418 marks the client banned until then and `acquire` raises instead of waiting.
Only `budget_share` of each limit is used (0.9 by default), leaving room for counts in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

_CI = (CIMultiDictProxy, CIMultiDict)  # aiohttp's response headers: case-insensitive lookups

_UNIT_MS = {"SECOND": 1_000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
_UNIT_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One entry of `exchangeInfo.rateLimits`."""

    kind: str          # REQUEST_WEIGHT, ORDERS or RAW_REQUESTS
    interval: str      # SECOND, MINUTE, HOUR, DAY
    interval_num: int
    limit: int

    @property
    def window_ms(self) -> int:
        return self.interval_num * _UNIT_MS[self.interval]

    @property
    def header(self) -> str | None:
        """The response header carrying the exchange's count for this limit (lower case)."""
        suffix = f"{self.interval_num}{_UNIT_LETTER[self.interval]}".lower()
        if self.kind == "REQUEST_WEIGHT":
            return f"x-mbx-used-weight-{suffix}"
        if self.kind == "ORDERS":
            return f"x-mbx-order-count-{suffix}"
        return None

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.interval_num}{_UNIT_LETTER[self.interval]}"


# Binance's published spot limits, used until exchangeInfo has been read.
DEFAULT_LIMITS = (RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 6000), RateLimit("ORDERS", "SECOND", 10, 100),
                  RateLimit("ORDERS", "DAY", 1, 200_000), RateLimit("RAW_REQUESTS", "MINUTE", 5, 61_000))


def rate_limits_of(exchange_info: Mapping[str, Any]) -> tuple[RateLimit, ...]:
    """The limits of an exchangeInfo document (malformed entries raise ValueError)."""
    out = []
    for r in exchange_info.get("rateLimits", []):
        try:
            out.append(RateLimit(str(r["rateLimitType"]), str(r["interval"]), int(r["intervalNum"]),
                                 int(r["limit"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed rateLimits entry: {exc}") from None
        if out[-1].interval not in _UNIT_MS or out[-1].limit <= 0 or out[-1].interval_num <= 0:
            raise ValueError(f"unusable rateLimits entry {out[-1]}")
    return tuple(out)


class ThrottlerBanned(Exception):
    """`acquire` while banned (HTTP 418): nothing may be sent before `until_ms`."""

    def __init__(self, until_ms: int) -> None:
        super().__init__(f"IP banned by Binance until {until_ms} (epoch ms)")
        self.until_ms = until_ms


_WEIGHT, _ORDERS, _RAW = 0, 1, 2  # what a window counts: a call's weight, its orders, or 1 a call


class _Window:
    __slots__ = ("budget", "counts", "id", "limit", "span_ms", "used")

    def __init__(self, limit: RateLimit, share: float) -> None:
        self.limit = limit
        self.budget = max(1, int(limit.limit * share))
        self.span_ms = limit.window_ms
        self.counts = (_WEIGHT if limit.kind == "REQUEST_WEIGHT" else _ORDERS if limit.kind == "ORDERS"
                       else _RAW)
        self.id = -1
        self.used = 0

    def roll(self, now_ms: int) -> None:
        w = now_ms // self.span_ms
        if w != self.id:
            self.id, self.used = w, 0

    def end_ms(self) -> int:
        return (self.id + 1) * self.span_ms

    def cost(self, weight: int, orders: int) -> int:
        c = self.counts
        return weight if c == _WEIGHT else orders if c == _ORDERS else 1


class Throttler:
    """Waits before a call until every limit's window has room for its cost."""

    def __init__(self, limits: Iterable[RateLimit] = DEFAULT_LIMITS, *, budget_share: float = 0.9,
                 now_ms: Callable[[], int] | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if not 0 < budget_share <= 1:
            raise ValueError("budget_share must be in (0, 1]")
        self.share = budget_share
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._sleep = sleep
        self.paused_until_ms = 0
        self.banned_until_ms = 0
        self.waits = 0   # how often acquire had to wait (a metric)
        self.set_limits(limits)

    def set_limits(self, limits: Iterable[RateLimit]) -> None:
        """Replace the limits (after reading exchangeInfo), keeping counts of limits that stay."""
        old = {w.limit.name: w for w in getattr(self, "_windows", ())}
        self._windows = []
        for lim in limits:
            w = _Window(lim, self.share)
            if lim.name in old:
                w.id, w.used = old[lim.name].id, old[lim.name].used
            self._windows.append(w)
        self._by_header = {w.limit.header: w for w in self._windows if w.limit.header}
        self._headers = tuple(self._by_header.items())

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        return tuple(w.limit for w in self._windows)

    def delay_ms(self, weight: int, orders: int = 0) -> int:
        """How long a call of this cost must wait now (0: it may go); raises while banned."""
        now = self._now_ms()
        if now < self.banned_until_ms:
            raise ThrottlerBanned(self.banned_until_ms)
        wait = max(0, self.paused_until_ms - now)
        for w in self._windows:
            cost = w.cost(weight, orders)
            if cost <= 0:
                continue
            w.roll(now)
            if w.used + cost > w.budget:
                wait = max(wait, w.end_ms() - now)
        return wait

    def try_acquire(self, weight: int, orders: int = 0) -> bool:
        """Count the call if it may go now (`delay_ms` is 0) and say so; False counts nothing and
        the caller awaits `acquire`. Not a coroutine: the order path's common case creates none.
        Raises while banned."""
        if self.delay_ms(weight, orders) > 0:
            return False
        self._count(weight, orders)
        return True

    async def acquire(self, weight: int, orders: int = 0) -> None:
        """Wait until the call fits every budget, then count it."""
        while True:
            wait = self.delay_ms(weight, orders)
            if wait <= 0:
                break
            self.waits += 1
            await self._sleep(wait / 1000)
        self._count(weight, orders)

    def _count(self, weight: int, orders: int) -> None:
        for w in self._windows:
            w.used += w.cost(weight, orders)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Raise local counts to the exchange's, from one response's headers (aiohttp's are
        case-insensitive, so each limit's header is looked up; any other mapping is lower-cased)."""
        if not headers:
            return
        if not isinstance(headers, _CI):
            headers = {k.lower(): v for k, v in headers.items()}
        now = 0
        for name, w in self._headers:
            value = headers.get(name)
            if value is None:
                continue
            try:
                used = int(value)
            except ValueError:
                continue
            if not now:
                now = self._now_ms()
            w.roll(now)
            if used > w.used:
                w.used = used

    def pause(self, seconds: float) -> None:
        """HTTP 429: send nothing for `seconds` (Retry-After)."""
        self.paused_until_ms = max(self.paused_until_ms, self._now_ms() + round(seconds * 1000))

    def ban(self, seconds: float) -> None:
        """HTTP 418: banned for `seconds` (Retry-After)."""
        self.banned_until_ms = max(self.banned_until_ms, self._now_ms() + round(seconds * 1000))

    def used(self) -> dict[str, int]:
        """The count of each limit's current window (for metrics), by limit name."""
        now = self._now_ms()
        out = {}
        for w in self._windows:
            w.roll(now)
            out[w.limit.name] = w.used
        return out
