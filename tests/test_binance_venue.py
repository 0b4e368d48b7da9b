"""BinanceVenue (the Venue protocol on python-binance) against the strict fake: orders as exact
decimal strings, typed responses, the error taxonomy, filter refresh, 418 -> HALTED, no secret
anywhere in reprs, errors or logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from fake_binance import DOC_API_KEY, DOC_SECRET, FakeBinance, Fault

from shared.adapters.binance.credentials import Credentials
from shared.adapters.binance.errors import BinanceError
from shared.adapters.binance.venue import BinanceVenue, risk_hook
from shared.events import OrderType, Side
from shared.execution.venue import (
    Banned,
    OrderNotFound,
    OrderRequest,
    RateLimited,
    TimeInForce,
    Venue,
    VenueAmbiguous,
    VenueOrder,
    VenueOrderStatus,
    VenueRejected,
)
from shared.risk import RiskEngine, TradingState

CREDS = Credentials(DOC_API_KEY, secret=DOC_SECRET)


def run(fn: Callable[[FakeBinance, BinanceVenue], Awaitable[Any]], *, on_error: Any = None, **kw: Any) -> Any:
    async def main() -> Any:
        async with FakeBinance(**kw) as fake:
            fake.add_hmac_account(DOC_API_KEY, DOC_SECRET)
            venue = await BinanceVenue.connect(base_url=fake.base_url, credentials=CREDS,
                                               symbols=["ETHUSDT", "BTCUSDT"], on_error=on_error)
            async with venue:
                return await fn(fake, venue)
    return asyncio.run(main())


def market(coid: str, side: Side = Side.SELL, **kw: Any) -> OrderRequest:
    if "quote_quantity" not in kw:
        kw.setdefault("quantity", Decimal("0.0100"))
    return OrderRequest(symbol="ETHUSDT", side=side, order_type=OrderType.MARKET, client_order_id=coid, **kw)


def limit(coid: str, qty: str = "0.0100", price: str = "2500.00") -> OrderRequest:
    return OrderRequest(symbol="ETHUSDT", side=Side.BUY, order_type=OrderType.LIMIT, client_order_id=coid,
                        quantity=Decimal(qty), price=Decimal(price), time_in_force=TimeInForce.GTC)


def test_it_is_a_venue_and_trades_market_and_limit_orders() -> None:
    async def go(fake: FakeBinance, venue: BinanceVenue) -> None:
        assert isinstance(venue, Venue) and venue.time_synced
        buy = await venue.submit(market("mf-b1", Side.BUY, quote_quantity=Decimal("100")))
        assert fake.last_params["quoteOrderQty"] == "100" and fake.last_params["newOrderRespType"] == "FULL"
        assert isinstance(buy, VenueOrder) and buy.status is VenueOrderStatus.FILLED
        assert buy.executed_qty == Decimal("0.0333") and buy.fills[0].price == Decimal("3000")
        lim = await venue.submit(limit("mf-l1"))
        assert fake.last_params["price"] == "2500" and fake.last_params["quantity"] == "0.01"
        assert lim.status is VenueOrderStatus.NEW
        assert [o.client_order_id for o in await venue.open_orders("ETHUSDT")] == ["mf-l1"]
        q = await venue.query_order("ETHUSDT", "mf-l1")
        assert q.order_id == lim.order_id and q.status is VenueOrderStatus.NEW
        c = await venue.cancel("ETHUSDT", "mf-l1")
        assert c.client_order_id == "mf-l1" and c.status is VenueOrderStatus.CANCELED
        assert await venue.open_orders() == []
        trades = await venue.recent_trades("ETHUSDT", order_id=buy.order_id)
        assert [t.trade_id for t in trades] == [buy.fills[0].trade_id]
        bal = {b.asset: b for b in await venue.balances()}
        assert bal["ETH"].free == Decimal("10.03326670")  # 10 + 0.0333 - 0.1 % fee in ETH
        assert bal["USDT"].locked == 0
    run(go)


def test_errors_are_the_executors_taxonomy() -> None:
    async def go(fake: FakeBinance, venue: BinanceVenue) -> None:
        refreshes = venue.exchange_info.refreshes
        with pytest.raises(VenueRejected) as e:
            await venue.submit(limit("mf-r1", qty="0.00001"))
        assert (e.value.code, e.value.reason) == (-1013, "Filter failure: LOT_SIZE")
        got: list[Any] = []
        venue.on_filters = got.append   # e.g. RiskEngine.set_filters
        assert venue.exchange_info.stale()  # a filter failure: exchangeInfo is re-read in the background
        assert venue._refreshing is not None
        await venue._refreshing
        assert venue.exchange_info.refreshes == refreshes + 1 and sorted(got[0]) == ["BTCUSDT", "ETHUSDT"]
        assert fake.requests[-1] == ("GET", "exchangeInfo", 200)
        with pytest.raises(VenueRejected) as e:
            await venue.submit(market("mf-r2", Side.BUY, quote_quantity=Decimal("99999")))
        assert (e.value.code, e.value.reason) == (-2010, "Account has insufficient balance for requested action.")
        with pytest.raises(OrderNotFound):
            await venue.query_order("ETHUSDT", "mf-none")
        for fault in (Fault("drop", "POST", "order", execute=True), Fault("5xx", "POST", "order", status=500),
                      Fault("5xx", "POST", "order", code=-1007, execute=True)):
            fake.inject(fault)
            with pytest.raises(VenueAmbiguous):
                await venue.submit(market(f"mf-a{len(fake.orders)}"))
        fake.inject(Fault("429", "POST", "order", retry_after=1))
        with pytest.raises(RateLimited) as e:
            await venue.submit(market("mf-429"))
        assert e.value.retry_after_s == 1
    run(go)


def test_418_halts_trading_through_the_risk_engine_and_counts_the_ban(caplog: pytest.LogCaptureFixture) -> None:
    risk = RiskEngine()
    caplog.set_level(logging.CRITICAL, logger="shared.adapters.binance.rest")

    async def go(fake: FakeBinance, venue: BinanceVenue) -> None:
        fake.inject(Fault("418", "POST", "order", retry_after=300))
        with pytest.raises(Banned) as e:
            await venue.submit(market("mf-ban"))
        assert e.value.until_ms is not None and venue.banned
        assert venue.metrics()["bans"] == 1 and venue.metrics()["errors"] == {"-1003": 1}
    run(go, on_error=risk_hook(risk))
    assert risk.trading_state is TradingState.HALTED
    assert any(getattr(r, "alert", "") == "binance_ip_banned" for r in caplog.records)


def test_no_secret_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def collect(err: BinanceError) -> None:
        texts.extend([str(err), repr(err), err.reason, err.detail])

    async def go(fake: FakeBinance, venue: BinanceVenue) -> None:
        texts.extend([repr(venue), repr(venue.rest), repr(CREDS), str(CREDS), repr(venue.metrics())])
        bad = await BinanceVenue.connect(base_url=fake.base_url, credentials=Credentials(DOC_API_KEY, secret="x" * 64))
        try:
            with pytest.raises(BinanceError) as e:
                await bad.balances()
            texts.extend([str(e.value), repr(e.value)])
        finally:
            await bad.close()
        for fault in (Fault("5xx", "GET", "account", status=503), Fault("418", "POST", "order", retry_after=1)):
            fake.inject(fault)
            with pytest.raises(BinanceError) as e:
                await (venue.submit(market("mf-x")) if fault.method == "POST" else venue.balances())
            texts.extend([str(e.value), repr(e.value)])
    run(go, on_error=collect)
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert "Signature for this request is not valid." in blob and "Banned" in blob
    for secret in (DOC_API_KEY, DOC_SECRET, DOC_SECRET[:16], DOC_API_KEY[:16]):
        assert secret not in blob
