"""Exchange filters and rate limits from `GET /api/v3/exchangeInfo`, cached and refreshed.

Refreshed when older than `refresh_s` (an hour by default) and right after an order failed a
filter (-1013: the exchange's rules may have changed since the last read): `invalidate()`
marks the cache stale, the next `filters()` re-reads it. Each read also hands the document's
`rateLimits` to the throttler (see `BinanceRest.exchange_info`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from shared.risk.filters import ExchangeFilters, parse_exchange_info

from .rest import BinanceRest


class ExchangeInfoCache:
    """The current filters of `symbols` (all symbols when None)."""

    def __init__(self, rest: BinanceRest, symbols: Sequence[str] | None = None, *, refresh_s: float = 3600.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 on_refresh: Callable[[ExchangeFilters], None] | None = None) -> None:
        self.rest = rest
        self.symbols = tuple(symbols) if symbols else None
        self.refresh_s = refresh_s
        self._monotonic = monotonic
        self.on_refresh = on_refresh
        self._filters: ExchangeFilters | None = None
        self._loaded_at: float | None = None
        self.refreshes = 0

    @property
    def current(self) -> ExchangeFilters | None:
        """The last filters read, stale or not (None before the first read)."""
        return self._filters

    def stale(self) -> bool:
        return self._loaded_at is None or self._monotonic() - self._loaded_at >= self.refresh_s

    def invalidate(self) -> None:
        """After a filter failure: the next `filters()` reads exchangeInfo again."""
        self._loaded_at = None

    async def filters(self) -> ExchangeFilters:
        if self._filters is None or self.stale():
            return await self.refresh()
        return self._filters

    async def refresh(self) -> ExchangeFilters:
        _, raw = await self.rest.exchange_info(self.symbols)
        self._filters = parse_exchange_info(raw)
        self._loaded_at = self._monotonic()
        self.refreshes += 1
        if self.on_refresh is not None:
            self.on_refresh(self._filters)
        return self._filters
