"""PositionBook: fees in quote, base and BNB; full sells after base fees; snapshot/restore; idempotent fills."""

from __future__ import annotations

import json

import pytest

from shared.events import ExecutionReport, Fill, OrderIntent, OrderStatus, Side
from shared.portfolio import PositionBook

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DAY = 86_400_000


def report(side: Side, fills: list[Fill], *, symbol: str = "BTCUSDT", order: str = "o1", t: int = T0,
           status: OrderStatus = OrderStatus.FILLED) -> ExecutionReport:
    base = symbol.removesuffix("USDT")
    intent = OrderIntent(event_id=f"intent-{order}", correlation_id=f"correlation-{order}", event_time=t, symbol=symbol,
                         strategy="test", side=side, quantity=sum(f.quantity for f in fills),
                         reference_price=fills[0].price, signal_id=f"signal-{order}")
    return ExecutionReport.create(intent=intent, status=status, venue="paper", order_id=1, base_asset=base,
                                  quote_asset="USDT", fills=tuple(fills), event_time=t)


def fill(price: float, qty: float, fee: float, asset: str, trade_id: int = 1) -> Fill:
    return Fill(price=price, quantity=qty, commission=fee, commission_asset=asset, trade_id=trade_id)


def test_fee_in_quote_is_paid_from_cash_and_counted_in_the_round_trip() -> None:
    book = PositionBook(10_000.0)
    book.apply(report(Side.BUY, [fill(100.0, 10.0, 1.0, "USDT")], order="b"))
    assert book.cash == pytest.approx(10_000.0 - 1_000.0 - 1.0)
    pos = book.position("BTCUSDT")
    assert pos is not None and pos.qty == 10.0 and pos.cost == pytest.approx(1_001.0)
    closed = book.apply(report(Side.SELL, [fill(110.0, 10.0, 1.1, "USDT", 2)], order="s", t=T0 + 60_000))
    assert book.position("BTCUSDT") is None
    assert book.cash == pytest.approx(10_000.0 - 1_001.0 + 1_100.0 - 1.1)
    (trade,) = closed
    assert trade.pnl == pytest.approx(1_100.0 - 1.1 - 1_001.0)
    assert trade.commission == pytest.approx(2.1)
    assert book.realized_pnl == pytest.approx(trade.pnl)
    assert book.fees == {"USDT": pytest.approx(2.1)}


def test_fee_in_base_shrinks_the_holding_and_a_full_sell_of_it_does_not_fail() -> None:
    book = PositionBook(10_000.0)
    # Binance without BNB: a buy of 0.01 BTC pays 0.1 % in BTC, so 0.00999 BTC is held.
    book.apply(report(Side.BUY, [fill(40_000.0, 0.01, 0.00001, "BTC")], order="b"))
    held = book.qty("BTCUSDT")
    assert held == pytest.approx(0.00999)
    assert book.balance("BTC") == held
    assert book.cash == pytest.approx(10_000.0 - 400.0)
    # Selling exactly what is held (not the 0.01 that was bought) closes the position.
    closed = book.apply(report(Side.SELL, [fill(41_000.0, held, 0.40959, "USDT", 2)], order="s"))
    assert book.position("BTCUSDT") is None and len(closed) == 1
    assert closed[0].pnl == pytest.approx(held * 41_000.0 - 0.40959 - 400.0)
    # Selling the bought quantity instead would exceed the holding: the book refuses it.
    book.apply(report(Side.BUY, [fill(40_000.0, 0.01, 0.00001, "BTC", 3)], order="b2"))
    with pytest.raises(ValueError, match="exceeds the held"):
        book.apply(report(Side.SELL, [fill(41_000.0, 0.01, 0.41, "USDT", 4)], order="s2"))


def test_fee_in_bnb_comes_out_of_the_bnb_balance_and_is_valued_into_pnl_and_equity() -> None:
    book = PositionBook(10_000.0)
    book.deposit("BNB", 1.0)
    book.mark_asset("BNB", 300.0)
    assert book.equity == pytest.approx(10_300.0)
    # Capital, not profit: the day's start and the peak include it.
    acc = book.snapshot_account()
    assert acc.day_start_equity == acc.peak_equity == pytest.approx(10_300.0)
    book.apply(report(Side.BUY, [fill(100.0, 10.0, 0.0025, "BNB")], order="b"))
    assert book.qty("BTCUSDT") == 10.0                       # nothing taken from the bought asset
    assert book.cash == pytest.approx(9_000.0)               # nothing taken from cash
    assert book.balance("BNB") == pytest.approx(0.9975)
    book.mark("BTCUSDT", 100.0, T0)
    assert book.equity == pytest.approx(9_000.0 + 1_000.0 + 0.9975 * 300.0)
    closed = book.apply(report(Side.SELL, [fill(110.0, 10.0, 0.0025, "BNB", 2)], order="s"))
    assert book.cash == pytest.approx(10_100.0)
    assert closed[0].pnl == pytest.approx(100.0 - 2 * 0.75)  # both fees at 300 USDT/BNB
    assert closed[0].commission == pytest.approx(1.5)
    assert book.fees == {"BNB": pytest.approx(0.005)}
    assert book.equity == pytest.approx(10_100.0 + 0.995 * 300.0)


def test_the_same_fill_twice_changes_nothing() -> None:
    book = PositionBook(10_000.0)
    r = report(Side.BUY, [fill(100.0, 5.0, 0.5, "USDT")], order="b")
    book.apply(r)
    snap = book.snapshot()
    assert book.apply(r) == []
    assert book.snapshot() == snap
    # A later report of the same order repeats its earlier fills: only the new one is booked.
    partial = report(Side.SELL, [fill(110.0, 2.0, 0.2, "USDT", 7)], order="s", status=OrderStatus.PARTIALLY_FILLED)
    full = report(Side.SELL, [fill(110.0, 2.0, 0.2, "USDT", 7), fill(111.0, 3.0, 0.3, "USDT", 8)], order="s")
    book.apply(partial)
    closed = book.apply(full)
    assert book.position("BTCUSDT") is None and len(closed) == 1
    assert closed[0].size == 5.0
    after = book.snapshot()
    book.apply(full)
    book.apply(partial)
    assert book.snapshot() == after


def _busy_book() -> PositionBook:
    book = PositionBook(50_000.0)
    book.deposit("BNB", 2.0)
    book.mark_asset("BNB", 250.0)
    book.apply(report(Side.BUY, [fill(40_000.0, 0.5, 0.0005, "BTC")], order="b1", t=T0))
    book.apply(report(Side.BUY, [fill(2_000.0, 3.0, 0.003, "BNB", 2)], symbol="ETHUSDT", order="b2", t=T0 + 1))
    book.mark("BTCUSDT", 41_000.0, T0 + 60_000)
    book.mark("ETHUSDT", 1_900.0, T0 + DAY + 5)
    book.apply(report(Side.SELL, [fill(1_900.0, 3.0, 5.7, "USDT", 3)], symbol="ETHUSDT", order="s2",
                      t=T0 + DAY + 10))
    return book


def test_snapshot_and_restore_give_an_identical_book() -> None:
    book = _busy_book()
    snap = book.snapshot()
    restored = PositionBook.restore(json.loads(json.dumps(snap)))  # through JSON, as persisted
    assert restored.snapshot() == snap
    assert restored.equity == book.equity and restored.snapshot_account() == book.snapshot_account()
    assert restored.closed_trades == book.closed_trades
    # Both continue identically, duplicates included.
    for b in (book, restored):
        b.apply(report(Side.SELL, [fill(42_000.0, 0.4995, 21.0, "USDT", 4)], order="s1", t=T0 + 2 * DAY))
        b.apply(report(Side.BUY, [fill(100.0, 1.0, 0.001, "BTC", 1)], order="b1", t=T0))  # old fill again
        b.mark("BTCUSDT", 43_000.0, T0 + 2 * DAY + 1)
    assert restored.snapshot() == book.snapshot()


def test_equity_peak_day_start_and_loss_streak() -> None:
    book = PositionBook(1_000.0)
    book.apply(report(Side.BUY, [fill(10.0, 50.0, 0.0, "USDT")], order="b1", t=T0))
    book.mark("BTCUSDT", 12.0, T0 + 1)
    assert book.peak_equity == pytest.approx(1_100.0)
    # The first mark of a new UTC day: the day starts from the equity carried in (1100), and
    # that mark's move is the day's first PnL.
    book.mark("BTCUSDT", 11.0, T0 + DAY)
    acc = book.snapshot_account()
    assert acc.day_start_equity == pytest.approx(1_100.0)
    assert acc.equity == pytest.approx(1_050.0) and acc.peak_equity == pytest.approx(1_100.0)
    book.apply(report(Side.SELL, [fill(9.0, 50.0, 0.0, "USDT")], order="s1", t=T0 + DAY + 1))
    book.apply(report(Side.BUY, [fill(10.0, 10.0, 0.0, "USDT", 2)], order="b2", t=T0 + DAY + 2))
    book.apply(report(Side.SELL, [fill(9.0, 10.0, 0.0, "USDT", 3)], order="s2", t=T0 + DAY + 3))
    assert book.snapshot_account().consecutive_losses == 2
    book.apply(report(Side.BUY, [fill(10.0, 10.0, 0.0, "USDT", 4)], order="b3", t=T0 + DAY + 4))
    book.apply(report(Side.SELL, [fill(11.0, 10.0, 0.0, "USDT", 5)], order="s3", t=T0 + DAY + 5))
    assert book.snapshot_account().consecutive_losses == 0


def test_the_account_snapshot_is_reused_until_the_book_changes() -> None:
    book = PositionBook(cash=10_000.0)
    first = book.snapshot_account()
    assert book.snapshot_account() is first  # unchanged book: the same snapshot for both risk layers
    book.apply(report(Side.BUY, [fill(40_000.0, 0.1, 4.0, "USDT")]))
    bought = book.snapshot_account()
    assert bought is not first and bought.positions["BTCUSDT"][0] == 0.1 and bought.cash == 10_000.0 - 4_004.0
    book.mark("BTCUSDT", 41_000.0, T0 + 1)
    marked = book.snapshot_account()
    assert marked.positions["BTCUSDT"][2] == 41_000.0 and marked.equity == bought.equity + 100.0
    book.deposit("BNB", 1.0)
    book.mark_asset("BNB", 300.0)
    assert book.snapshot_account().equity == marked.equity + 300.0
    restored = PositionBook.restore(book.snapshot())
    assert restored.snapshot_account() == book.snapshot_account()
