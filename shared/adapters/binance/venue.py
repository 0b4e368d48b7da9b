"""The Binance venue: `shared.execution.venue.Venue` on the REST client (`rest.py`).

Each call is one throttled, signed REST request whose response is validated into the venue
models before it is returned; errors are the executor's taxonomy (`errors.py`). Orders go out
as `OrderRequest.params()` (exact decimal strings) with `newOrderRespType=FULL`, so a MARKET
order's fills come back with its response. A -1013 filter failure marks the exchangeInfo cache
stale (the exchange's rules may have changed; the next `filters()` re-reads them).

The filters are re-read in the background when the cache is stale (an hour old, or after a
filter failure) at the next order, so no order waits for exchangeInfo; `on_filters` (e.g.
`RiskEngine.set_filters`) receives each new set.

`connect` builds everything from settings: the base URL (`--base-url`, `BINANCE_BASE_URL`,
`--testnet` or production), the keys from the environment, the clock offset, exchangeInfo's
filters and rate limits. `risk_hook` turns every exchange error into
`RiskEngine.report_exchange_error`, which HALTs trading on a ban (418, and 429 until its
Retry-After), and counts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.execution.venue import Balance, OrderRequest, VenueOrder, VenueTrade
from shared.risk.filters import ExchangeFilters

from .credentials import Credentials
from .errors import BinanceError, Rejected
from .exchange_info import ExchangeInfoCache
from .models import AccountInfo
from .rest import MAX_RECV_WINDOW_MS, BinanceRest, ErrorHook, ExchangeHook, resolve_base_url

FILTER_FAILURE = -1013
log = logging.getLogger(__name__)


class BinanceVenue:
    """One Binance spot account as a `Venue`."""

    name = "binance"

    def __init__(self, rest: BinanceRest, exchange_info: ExchangeInfoCache | None = None) -> None:
        self.rest = rest
        self.exchange_info = exchange_info or ExchangeInfoCache(rest)
        self._refreshing: asyncio.Task[ExchangeFilters | None] | None = None

    @property
    def on_filters(self) -> Callable[[ExchangeFilters], None] | None:
        return self.exchange_info.on_refresh

    @on_filters.setter
    def on_filters(self, hook: Callable[[ExchangeFilters], None] | None) -> None:
        self.exchange_info.on_refresh = hook

    def _refresh_soon(self) -> None:
        """Re-read exchangeInfo in the background if the cache is stale (one refresh at a time)."""
        if self.exchange_info.stale() and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> ExchangeFilters | None:
        try:
            return await self.exchange_info.refresh()
        except BinanceError as exc:
            log.warning("binance: exchangeInfo refresh failed (%s); keeping the filters read before", exc)
            return None

    def __repr__(self) -> str:
        return f"BinanceVenue({self.rest!r})"

    @classmethod
    async def connect(cls, *, base_url: str | None = None, testnet: bool = False,
                      credentials: Credentials | None = None, symbols: Sequence[str] | None = None,
                      environ: Mapping[str, str] | None = None, on_error: ErrorHook | None = None,
                      on_exchange: ExchangeHook | None = None,
                      recv_window_ms: int = MAX_RECV_WINDOW_MS) -> BinanceVenue:
        """Resolve the base URL and keys, sync the clock, read exchangeInfo (filters, rate limits)."""
        url = resolve_base_url(base_url, testnet=testnet, environ=environ)
        creds = credentials or Credentials.from_env(environ)
        rest = await BinanceRest.connect(creds, base_url=url, on_error=on_error, on_exchange=on_exchange,
                                         recv_window_ms=recv_window_ms)
        venue = cls(rest, ExchangeInfoCache(rest, symbols))
        try:
            await venue.exchange_info.refresh()
        except BaseException:
            await rest.close()
            raise
        return venue

    async def close(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
        await self.rest.close()

    async def __aenter__(self) -> BinanceVenue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the Venue protocol ------------------------------------------------------------------
    async def submit(self, order: OrderRequest) -> VenueOrder:
        params = order.params()
        params["newOrderRespType"] = "FULL"
        try:
            return await self.rest.new_order(params)
        except Rejected as exc:
            if exc.code == FILTER_FAILURE:
                self.exchange_info.invalidate()
            raise
        finally:
            self._refresh_soon()

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrder:
        return await self.rest.cancel_order(symbol, client_order_id)

    async def query_order(self, symbol: str, client_order_id: str) -> VenueOrder:
        return await self.rest.get_order(symbol, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return await self.rest.open_orders(symbol)

    async def balances(self) -> list[Balance]:
        return list((await self.rest.account()).balances)

    async def recent_trades(self, symbol: str, *, since_ms: int | None = None, order_id: int | None = None,
                            limit: int = 500) -> list[VenueTrade]:
        return await self.rest.my_trades(symbol, order_id=order_id, start_time=since_ms, limit=limit)

    # -- beyond the protocol -------------------------------------------------------------------
    async def account(self) -> AccountInfo:
        return await self.rest.account()

    @property
    def time_synced(self) -> bool:
        return self.rest.last_sync_ms > 0

    @property
    def banned(self) -> bool:
        return self.rest.server_ms() < self.rest.throttler.banned_until_ms

    def metrics(self) -> dict[str, Any]:
        """Counters for /metrics: requests by endpoint, errors by code, bans, window usage."""
        st = self.rest.stats
        return {"requests": dict(st.requests), "errors": dict(st.errors), "bans": st.bans,
                "time_syncs": st.time_syncs, "offset_ms": self.rest.offset_ms,
                "used": self.rest.throttler.used(), "throttle_waits": self.rest.throttler.waits}


def risk_hook(risk: Any, clock: Callable[[], int] | None = None) -> ErrorHook:
    """An `on_error` hook reporting every exchange error to a `RiskEngine` (bans HALT trading)."""
    now = clock or (lambda: int(time.time() * 1000))

    def hook(err: BinanceError) -> None:
        risk.report_exchange_error(err.http_status, err.code, now(), err.retry_after_s, err.reason)

    return hook
