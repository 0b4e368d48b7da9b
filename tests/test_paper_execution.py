"""Paper broker and executor: next-price fills, fees as Binance reports them, idempotent intents."""

from __future__ import annotations

import pytest

from shared.events import OrderIntent, OrderStatus, Side, Signal
from shared.execution import Executor, PaperBroker
from shared.market import Bar
from shared.portfolio import PositionBook
from shared.risk import RiskEngine


def make_intent(side: Side, *, quantity: float | None = None, quote: float | None = None, t: int = 0) -> OrderIntent:
    s = Signal.create(symbol="BTCUSDT", strategy="test", side=side, price=7000.0, bar_open_time=t,
                      bar_close_time=t + 59_999, market_event_id="m" * 32, correlation_id="c" * 32)
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                       event_time=s.event_time, symbol="BTCUSDT", strategy="test", side=side, quantity=quantity,
                       quote_quantity=quote, reference_price=7000.0, signal_id=s.event_id)


def bar(open_: float, t: int = 60_000) -> Bar:
    return Bar("BTCUSDT", "1m", t, t + 59_999, open_, open_ + 5, open_ - 5, open_ + 1, 3.0)


def test_market_buy_fills_at_next_open_within_budget_fee_in_quote() -> None:
    broker = PaperBroker(commission=0.002, fee_mode="quote")
    # A market order is accepted silently; its one report is the fill (Binance's FULL response).
    assert broker.submit(make_intent(Side.BUY, quote=10_000.0), now=59_999) is None
    assert len(broker.pending) == 1
    assert broker.on_bar(Bar("ETHUSDT", "1m", 60_000, 119_999, 130, 131, 129, 130, 1)) == []
    (report,) = broker.on_bar(bar(7180.60))
    (fill,) = report.fills
    assert report.status is OrderStatus.FILLED and report.event_time == 60_000
    assert fill.price == 7180.60
    # Whole satoshis, and the budget covers notional plus fee (the oracle's worked example).
    assert fill.quantity == pytest.approx(1.38986156, abs=1e-12)
    assert fill.commission_asset == "USDT"
    assert fill.commission == pytest.approx(fill.quantity * 7180.60 * 0.002)
    assert fill.quantity * fill.price + fill.commission <= 10_000.0
    assert broker.pending == []


def test_received_fee_mode_charges_the_bought_asset_then_quote_on_sell() -> None:
    broker = PaperBroker(commission=0.001, fee_mode="received")
    broker.submit(make_intent(Side.BUY, quote=7000.0), now=0)
    (buy,) = broker.on_bar(bar(7000.0))
    assert buy.fills[0].commission_asset == "BTC"
    assert buy.fills[0].commission == pytest.approx(buy.fills[0].quantity * 0.001)
    book = PositionBook(cash=7000.0)
    book.apply(buy)
    held = book.qty("BTCUSDT")
    assert held == pytest.approx(buy.executed_qty * 0.999)
    broker.submit(make_intent(Side.SELL, quantity=held, t=120_000), now=179_999)
    (sell,) = broker.on_bar(bar(7100.0, t=180_000))
    assert sell.fills[0].commission_asset == "USDT"
    book.apply(sell)  # the full sell of what is held succeeds
    assert book.qty("BTCUSDT") == 0.0 and len(book.closed_trades) == 1


def test_a_budget_too_small_for_one_step_is_rejected_not_filled() -> None:
    broker = PaperBroker(commission=0.001, step=0.001)
    broker.submit(make_intent(Side.BUY, quote=1.0), now=0)
    (report,) = broker.on_bar(bar(7000.0))
    assert report.status is OrderStatus.REJECTED and "zero" in report.reject_reason


def test_executor_ignores_a_redelivered_intent_and_derives_the_client_id() -> None:
    book = PositionBook(cash=10_000.0)
    broker = PaperBroker(commission=0.001)
    ex = Executor(broker, RiskEngine(), book.snapshot_account)
    intent = make_intent(Side.BUY, quote=5_000.0)
    # A plain approval is no decision event; the order is stored in flight under the derived id.
    assert ex.on_intent(intent, now=59_999) == (None, None)
    assert list(ex.in_flight) == [intent.client_order_id] and ex.risk.counters()["layer2"]["approved"] == 1
    assert ex.on_intent(intent, now=59_999) == (None, None)  # redelivered: ignored, not decided again
    assert len(broker.pending) == 1 and ex.risk.counters()["layer2"]["approved"] == 1
    # A second buy while the first is in flight is refused by the last look.
    other = make_intent(Side.BUY, quote=5_000.0, t=60_000)
    decision2, ack2 = ex.on_intent(other, now=119_999)
    assert ack2 is None and decision2 is not None and decision2.reasons == ("ORDER_IN_FLIGHT",)
