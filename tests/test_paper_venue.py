"""The paper venue: next-price fills, fees as Binance reports them, queries as Binance answers them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.events import OrderStatus, OrderType, Side
from shared.execution import Executor, MemoryIntentStore, PaperVenue, run_sync
from shared.execution.venue import (
    OrderNotFound,
    OrderRequest,
    Venue,
    VenueOrder,
    VenueOrderStatus,
    VenueRejected,
    to_decimal,
)
from shared.market import Bar
from shared.portfolio import PositionBook
from shared.risk import RiskEngine
from tests.execution_support import make_intent

COID = "mf-" + "a" * 32


def bar(open_: float, t: int = 60_000) -> Bar:
    return Bar("BTCUSDT", "1m", t, t + 59_999, open_, open_ + 5, open_ - 5, open_ + 1, 3.0)


def market(side: Side, *, qty: float | None = None, quote: float | None = None, coid: str = COID) -> OrderRequest:
    return OrderRequest(symbol="BTCUSDT", side=side, order_type=OrderType.MARKET, client_order_id=coid,
                        quantity=to_decimal(qty) if qty else None, quote_quantity=to_decimal(quote) if quote else None)


def test_it_is_a_venue() -> None:
    assert isinstance(PaperVenue(), Venue)


def test_market_buy_fills_at_next_open_within_budget_fee_in_quote() -> None:
    venue = PaperVenue(commission=0.002, fee_mode="quote")
    ack = run_sync(venue.submit(market(Side.BUY, quote=10_000.0)))
    assert ack.status is VenueOrderStatus.NEW and ack.executed_qty == 0 and len(venue.pending) == 1
    assert venue.on_bar(Bar("ETHUSDT", "1m", 60_000, 119_999, 130, 131, 129, 130, 1)) == []
    (order,) = venue.on_bar(bar(7180.60))
    (fill,) = order.fills
    assert order.status is VenueOrderStatus.FILLED and order.event_time == 60_000
    assert fill.price == Decimal("7180.6")
    # Whole satoshis, and the budget covers notional plus fee (the oracle's worked example).
    assert float(fill.qty) == pytest.approx(1.38986156, abs=1e-12)
    assert fill.commission_asset == "USDT"
    assert float(fill.commission) == pytest.approx(float(fill.qty) * 7180.60 * 0.002)
    assert float(fill.qty) * 7180.60 + float(fill.commission) <= 10_000.0
    assert not venue.pending
    # Queried afterwards it reports quantities, and its fill is in the account's trades.
    queried = run_sync(venue.query_order("BTCUSDT", COID))
    assert queried.status is VenueOrderStatus.FILLED and queried.executed_qty == fill.qty and queried.fills == ()
    (trade,) = run_sync(venue.recent_trades("BTCUSDT", order_id=order.order_id))
    assert (trade.trade_id, trade.qty, trade.is_buyer) == (fill.trade_id, fill.qty, True)


def test_received_fee_mode_charges_the_bought_asset_then_quote_on_sell() -> None:
    venue = PaperVenue(commission=0.001, fee_mode="received", balances={"USDT": 7000.0})
    book = PositionBook(cash=7000.0)
    ex = Executor(venue, RiskEngine(), book, MemoryIntentStore())
    run_sync(ex.on_intent(make_intent(Side.BUY, quote=7000.0, t=59_999), 59_999))
    (buy,) = run_sync(ex.on_order_update(venue.on_bar(bar(7000.0))[0], 60_000))
    assert buy.fills[0].commission_asset == "BTC"
    assert buy.fills[0].commission == pytest.approx(buy.fills[0].quantity * 0.001)
    held = book.qty("BTCUSDT")
    assert held == pytest.approx(buy.executed_qty * 0.999)
    assert {b.asset: float(b.free) for b in run_sync(venue.balances())}["BTC"] == pytest.approx(held, abs=1e-15)
    run_sync(ex.on_intent(make_intent(Side.SELL, quantity=held, t=179_999), 179_999))
    (sell,) = run_sync(ex.on_order_update(venue.on_bar(bar(7100.0, t=180_000))[0], 180_000))
    assert sell.fills[0].commission_asset == "USDT"
    assert book.qty("BTCUSDT") == 0.0 and len(book.closed_trades) == 1


def test_a_budget_too_small_for_one_step_expires_unfilled() -> None:
    venue = PaperVenue(commission=0.001, step=0.001)
    run_sync(venue.submit(market(Side.BUY, quote=1.0)))
    (order,) = venue.on_bar(bar(7000.0))
    assert order.status is VenueOrderStatus.EXPIRED and order.fills == ()


def test_client_ids_are_unique_among_open_orders_only_and_balances_are_checked() -> None:
    venue = PaperVenue(balances={"USDT": 1000.0})
    run_sync(venue.submit(market(Side.BUY, quote=500.0)))
    with pytest.raises(VenueRejected) as dup:
        run_sync(venue.submit(market(Side.BUY, quote=500.0)))
    assert dup.value.code == -2010 and "Duplicate" in dup.value.reason
    with pytest.raises(VenueRejected) as poor:
        run_sync(venue.submit(market(Side.BUY, quote=5000.0, coid="mf-" + "b" * 32)))
    assert "insufficient balance" in poor.value.reason
    with pytest.raises(VenueRejected):
        run_sync(venue.submit(market(Side.SELL, qty=1.0, coid="mf-" + "c" * 32)))  # no BTC held
    venue.on_bar(bar(100.0))
    # Filled, the id is free again: a resend now would be a second order (why the executor never resends).
    run_sync(venue.submit(market(Side.BUY, quote=100.0)))
    assert venue.submitted == 2
    with pytest.raises(OrderNotFound):
        run_sync(venue.query_order("BTCUSDT", "mf-" + "9" * 32))


def test_limit_orders_rest_until_the_price_reaches_them_and_can_be_canceled() -> None:
    venue = PaperVenue(commission=0.0)
    req = OrderRequest(symbol="BTCUSDT", side=Side.BUY, order_type=OrderType.LIMIT, client_order_id=COID,
                       quantity=to_decimal(0.5), price=to_decimal(6900.0))
    run_sync(venue.submit(req))
    assert venue.on_bar(bar(7000.0)) == []
    (working,) = run_sync(venue.open_orders("BTCUSDT"))
    assert working.status is VenueOrderStatus.NEW and working.price == Decimal("6900")
    (filled,) = venue.on_bar(bar(6850.0, t=120_000))
    assert filled.status is VenueOrderStatus.FILLED and filled.fills[0].price == Decimal("6850")
    req2 = req.model_copy(update={"client_order_id": "mf-" + "d" * 32})
    run_sync(venue.submit(req2))
    canceled = run_sync(venue.cancel("BTCUSDT", req2.client_order_id))
    assert canceled.status is VenueOrderStatus.CANCELED and not venue.pending


def test_executor_ignores_a_redelivered_intent_and_derives_the_client_id() -> None:
    book = PositionBook(cash=10_000.0)
    venue = PaperVenue(commission=0.001)
    ex = Executor(venue, RiskEngine(), book, MemoryIntentStore())
    intent = make_intent(Side.BUY, quote=5_000.0, t=59_999)
    # A plain approval is no decision event; the order is stored in flight under the derived id.
    assert run_sync(ex.on_intent(intent, now=59_999)) == (None, (), False)
    assert list(ex.in_flight) == [intent.client_order_id] and ex.risk.counters()["layer2"]["approved"] == 1
    assert run_sync(ex.on_intent(intent, now=59_999)).duplicate  # redelivered: not decided again
    assert len(venue.pending) == 1 and ex.risk.counters()["layer2"]["approved"] == 1
    # A second buy while the first is in flight is refused by the last look.
    other = make_intent(Side.BUY, quote=5_000.0, t=119_999)
    out = run_sync(ex.on_intent(other, now=119_999))
    assert out.reports == () and out.decision is not None and out.decision.reasons == ("ORDER_IN_FLIGHT",)
    (update,) = venue.on_bar(bar(7000.0, t=120_000))
    (report,) = run_sync(ex.on_order_update(update, 120_000))
    assert report.status is OrderStatus.FILLED and report.client_order_id == intent.client_order_id
    assert run_sync(ex.on_order_update(update, 120_000)) == ()  # the same update again: nothing


def test_what_the_paper_venue_and_the_executor_build_unvalidated_is_what_validation_builds() -> None:
    venue = PaperVenue(commission=0.001)
    ex = Executor(venue, RiskEngine(), PositionBook(cash=10_000.0), MemoryIntentStore())
    intent = make_intent(Side.BUY, quote=5_000.0, t=59_999)
    run_sync(ex.on_intent(intent, 59_999))
    (rec,) = ex.open.values()
    assert rec.request is not None and OrderRequest.model_validate(rec.request.model_dump()) == rec.request
    (ack,) = run_sync(venue.open_orders())
    (filled,) = venue.on_bar(bar(7000.0))
    for order in (ack, filled):
        assert VenueOrder.model_validate(order.model_dump()) == order
        assert list(order.__dict__) == list(VenueOrder.model_fields)
