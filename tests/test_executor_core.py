"""The executor core: store before send, never a second order, restart knows the book, crashes
between any two steps leave no orphan and no duplicate, ambiguous outcomes are queried."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.events import OrderStatus, Side
from shared.execution import OrderState, PaperVenue, run_sync
from shared.execution.venue import Banned, RateLimited, VenueRejected
from shared.risk import TradingState
from tests.execution_support import SYMBOL, T0, Crash, CrashingStore, FakeTime, FaultyVenue, make_intent, start

MINUTE = 60_000


def paper(cash: float = 10_000.0) -> PaperVenue:
    return PaperVenue(commission=0.001, balances={"USDT": cash})


def test_restart_after_a_filled_buy_knows_the_position(tmp_path: Path) -> None:
    """The issue's bug: after a restart that follows a filled BUY, the executor must not believe
    it is flat (approving a second BUY, refusing the SELL that closes the first)."""
    venue, time = paper(), FakeTime()
    ex = start(tmp_path, venue, time)
    buy = make_intent(Side.BUY, quote=5_000.0)
    assert run_sync(ex.on_intent(buy, T0)).reports == ()
    (filled,) = [r for u in venue.on_price(SYMBOL, 7000.0, T0 + 1) for r in run_sync(ex.on_order_update(u, T0 + 1))]
    assert filled.status is OrderStatus.FILLED and ex.book.qty(SYMBOL) > 0
    held = ex.book.qty(SYMBOL)

    ex2 = start(tmp_path, venue, time)  # the process restarts; the venue (the exchange) did not
    assert ex2.book.qty(SYMBOL) == held and ex2.book.cash == ex.book.cash
    assert not ex2.differences  # book and venue agree
    second = make_intent(Side.BUY, quote=1_000.0, t=T0 + MINUTE)
    out = run_sync(ex2.on_intent(second, T0 + MINUTE))
    assert out.decision is not None and out.decision.reasons == ("POSITION_OPEN",) and venue.submitted == 1
    sell = make_intent(Side.SELL, quantity=held, t=T0 + 2 * MINUTE)
    out = run_sync(ex2.on_intent(sell, T0 + 2 * MINUTE))
    assert out.decision is None and venue.submitted == 2
    (closed,) = [r for u in venue.on_price(SYMBOL, 7100.0, T0 + 2 * MINUTE + 1)
                 for r in run_sync(ex2.on_order_update(u, T0 + 2 * MINUTE + 1))]
    assert closed.status is OrderStatus.FILLED and ex2.book.qty(SYMBOL) == 0.0


@pytest.mark.parametrize("stop", ["rejected", "submitted", "accepted", "filled", "unknown"])
def test_a_redelivered_intent_at_any_state_sends_nothing(tmp_path: Path, stop: str) -> None:
    venue, time = FaultyVenue(paper()), FakeTime()
    ex = start(tmp_path, venue, time)
    intent = make_intent(Side.BUY, quote=5_000.0)
    if stop == "rejected":
        intent = make_intent(Side.SELL, quantity=1.0)  # nothing held: the last look rejects it
    if stop == "submitted":
        venue.fail["submit"] = ("crash_before", 1)
        with pytest.raises(Crash):
            run_sync(ex.on_intent(intent, T0))
    else:
        if stop == "unknown":
            venue.fail["submit"] = ("ambiguous_before", 1)
            venue.fail["query_order"] = ("ambiguous_before", 99)
        run_sync(ex.on_intent(intent, T0))
    if stop == "filled":
        for u in venue.inner.on_price(SYMBOL, 7000.0, T0 + 1):
            run_sync(ex.on_order_update(u, T0 + 1))
    state = run_sync(ex.store.get(intent.event_id)).state  # type: ignore[union-attr]
    # An acknowledgement is written with the record's next change: stored, an accepted order is SUBMITTED.
    assert state.value == {"rejected": "REJECTED", "submitted": "SUBMITTED", "accepted": "SUBMITTED",
                           "filled": "FILLED", "unknown": "UNKNOWN"}[stop]
    sent = venue.inner.submitted
    # Redelivered to the same process, and to a restarted one (before and after it reconciles).
    assert run_sync(ex.on_intent(intent, T0)).duplicate
    venue.fail.clear()
    ex2 = start(tmp_path, venue, time)
    assert run_sync(ex2.on_intent(intent, T0)).duplicate
    assert venue.inner.submitted == sent and venue.calls.get("submit", 0) == (0 if stop == "rejected" else 1)


def _fill_all(ex, venue: PaperVenue, price: float, t: int) -> list:
    return [r for u in venue.on_price(SYMBOL, price, t) for r in run_sync(ex.on_order_update(u, t))]


CRASH_POINTS = [
    ("store.get", None), ("store.create", None), ("venue.submit:crash_before", None),
    ("venue.submit:crash_after", None), ("store.save:fill", None), ("venue.fill_unseen", None), ("none", None),
]


@pytest.mark.parametrize("point", [p for p, _ in CRASH_POINTS])
def test_a_crash_between_any_two_steps_leaves_no_orphan_and_no_duplicate(tmp_path: Path, point: str) -> None:
    """Crash at each step of one BUY's life, restart, redeliver the intent, let the market move:
    exactly one order or none at the venue, the book agrees with the venue, every record final."""
    inner = paper()
    venue, time = FaultyVenue(inner), FakeTime()
    ex = start(tmp_path, venue, time)
    store = CrashingStore(ex.store)
    ex.store = store  # type: ignore[assignment]
    intent = make_intent(Side.BUY, quote=5_000.0)
    where, _, kind = point.partition(":")
    if where == "store.get":
        store.crash_on["get"] = 1
    elif where == "store.create":
        store.crash_on["create"] = 1
    elif where == "venue.submit":
        venue.fail["submit"] = (kind, 1)
    elif point == "store.save:fill":
        store.crash_on["save"] = 1  # the first write after the send (the acknowledgement waits for it)
    try:
        run_sync(ex.on_intent(intent, T0))
        if point == "venue.fill_unseen":  # the venue fills it; the process dies before it hears so
            inner.on_price(SYMBOL, 7000.0, T0 + 1)
            raise Crash("fill update")
        _fill_all(ex, inner, 7000.0, T0 + 1)
    except Crash:
        pass
    else:
        assert point == "none"
    time.now += 10_000  # the restart comes later than the venue would accept the lost request
    venue.fail.clear()
    ex2 = start(tmp_path, venue, time)
    run_sync(ex2.on_intent(intent, T0))  # the hub redelivers the intent
    _fill_all(ex2, inner, 7010.0, T0 + 2)
    rec = run_sync(ex2.store.get(intent.event_id))
    orders = inner.submitted
    assert orders <= 1, f"{orders} orders for one intent"
    assert rec is not None or orders == 0
    if rec is not None:
        assert rec.state.is_final, rec.transitions
        assert (rec.state is OrderState.FILLED) == (orders == 1) or point in ("store.get", "store.create")
    assert not inner.pending and not ex2.open  # no orphan: nothing left working anywhere
    # The book is the venue's: what it holds of the base asset, and its cash.
    balances = {b.asset: float(b.total) for b in run_sync(inner.balances())}
    assert ex2.book.qty(SYMBOL) == pytest.approx(balances.get("BTC", 0.0), abs=1e-12)
    assert ex2.book.cash == pytest.approx(balances["USDT"], abs=1e-9)
    if point in ("store.get", "store.create", "none"):
        assert orders == 1  # nothing was stored before the crash: the redelivery placed it once


def test_ambiguous_send_is_queried_through_not_visible_yet_never_resent(tmp_path: Path) -> None:
    inner = paper()
    venue, time = FaultyVenue(inner), FakeTime()
    ex = start(tmp_path, venue, time)
    venue.fail["submit"] = ("ambiguous_after", 1)   # placed, but the answer is a 503
    venue.fail["query_order"] = ("not_found", 2)    # -2013 twice: not visible yet
    intent = make_intent(Side.BUY, quote=5_000.0)
    run_sync(ex.on_intent(intent, T0))
    rec = ex.record(intent.client_order_id)
    assert rec is not None and rec.state is OrderState.ACCEPTED
    assert [t.to_state for t in rec.transitions] == [OrderState.SUBMITTED, OrderState.UNKNOWN, OrderState.ACCEPTED]
    assert venue.calls["submit"] == 1 and venue.calls["query_order"] == 3 and time.slept == [0.25, 0.5]
    assert inner.submitted == 1


def test_an_order_never_seen_by_the_venue_is_rejected_after_the_recv_window_not_resent(tmp_path: Path) -> None:
    inner = paper()
    venue, time = FaultyVenue(inner), FakeTime()
    ex = start(tmp_path, venue, time)
    venue.fail["submit"] = ("ambiguous_before", 1)  # the request never reached the venue
    out = run_sync(ex.on_intent(make_intent(Side.BUY, quote=5_000.0), T0))
    (report,) = out.reports
    assert report.status is OrderStatus.REJECTED and "never placed, not resent" in report.reject_reason
    assert sum(time.slept) * 1000 >= 6_000 and venue.calls["submit"] == 1 and inner.submitted == 0


def test_query_that_stays_ambiguous_leaves_unknown_then_resolve_unknown_settles_it(tmp_path: Path) -> None:
    inner = paper()
    venue, time = FaultyVenue(inner), FakeTime()
    ex = start(tmp_path, venue, time)
    venue.fail["submit"] = ("ambiguous_after", 1)
    venue.fail["query_order"] = ("ambiguous_before", 6)
    intent = make_intent(Side.BUY, quote=5_000.0)
    assert run_sync(ex.on_intent(intent, T0)).reports == ()
    assert ex.record(intent.client_order_id).state is OrderState.UNKNOWN  # type: ignore[union-attr]
    _fill_all(ex, inner, 7000.0, T0 + 1)  # the venue fills it; the executor gets the update
    rec = run_sync(ex.store.get(intent.event_id))
    assert rec is not None and rec.state is OrderState.FILLED and ex.book.qty(SYMBOL) > 0
    assert inner.submitted == 1 and not run_sync(ex.resolve_unknown(T0 + 2))


@pytest.mark.parametrize("error", [RateLimited(30.0, "Too many requests"), Banned(T0 + 120_000, "IP banned")])
def test_a_ban_rejects_the_order_and_halts_trading(tmp_path: Path, error: Exception) -> None:
    inner = paper()
    venue, time = FaultyVenue(inner), FakeTime()
    ex = start(tmp_path, venue, time)

    async def refuse(order):
        raise error

    inner.submit = refuse  # type: ignore[method-assign]
    (report,) = run_sync(ex.on_intent(make_intent(Side.BUY, quote=5_000.0), T0)).reports
    assert report.status is OrderStatus.REJECTED and str(error.http_status) in report.reject_reason  # type: ignore[attr-defined]
    assert ex.risk.trading_state is TradingState.HALTED
    out = run_sync(ex.on_intent(make_intent(Side.BUY, quote=5_000.0, t=T0 + 1000), T0 + 1000))
    assert out.decision is not None and out.decision.reasons[0] == "TRADING_HALTED"


def test_a_venue_rejection_is_final_with_its_reason(tmp_path: Path) -> None:
    inner = paper(cash=100.0)  # the venue holds less than the book believes
    venue, time = FaultyVenue(inner), FakeTime()
    ex = start(tmp_path, venue, time, cash=10_000.0)
    assert [d.subject for d in ex.differences] == ["balance"] and ex.book.cash == 100.0
    ex.book.set_balance("USDT", 10_000.0)  # as if the book were wrong again
    (report,) = run_sync(ex.on_intent(make_intent(Side.BUY, quote=5_000.0), T0)).reports
    assert report.status is OrderStatus.REJECTED and "-2010" in report.reject_reason
    assert inner.submitted == 0 and not ex.open
    with pytest.raises(VenueRejected):
        run_sync(inner.cancel(SYMBOL, "mf-nothing"))


def test_reconcile_cancels_an_orphan_and_sets_balances_to_the_venue(tmp_path: Path) -> None:
    from shared.events import OrderType
    from shared.execution.venue import OrderRequest, to_decimal

    inner = paper()
    venue, time = FaultyVenue(inner), FakeTime()
    start(tmp_path, venue, time)
    # An order of ours the store never saw (as if placed by a lost process) and a manual one.
    for coid in ("mf-" + "f" * 32, "web_manual"):
        run_sync(inner.submit(OrderRequest(symbol=SYMBOL, side=Side.BUY, order_type=OrderType.LIMIT,
                                           client_order_id=coid, quantity=to_decimal(0.01),
                                           price=to_decimal(5000.0))))
    inner._balances["BTC"] = 0.5
    ex2 = start(tmp_path, venue, time)
    subjects = sorted((d.subject, d.key) for d in ex2.differences)
    assert subjects == [("balance", "BTC"), ("orphan_order", "mf-" + "f" * 32)]
    assert list(inner.pending) == ["web_manual"]  # an operator's order is not ours to cancel
    assert ex2.book.qty(SYMBOL) == 0.5


def test_memory_stays_in_bounded_windows() -> None:
    from shared.execution import Executor, MemoryIntentStore
    from shared.portfolio import PositionBook
    from shared.risk import RiskConfig, RiskEngine

    venue = paper(cash=1e9)
    ex = Executor(venue, RiskEngine(RiskConfig.replay()), PositionBook(cash=1e9), MemoryIntentStore(),
                  decisions_window=5)
    for i in range(12):  # SELLs of nothing: each a REJECTED decision
        run_sync(ex.on_intent(make_intent(Side.SELL, quantity=1.0, t=T0 + i * MINUTE), T0 + i * MINUTE))
    assert len(ex.decisions) == 5 and ex.decisions[-1].event_time == T0 + 11 * MINUTE
