"""One test per risk check and per trading state; kill switch; persistence across restarts; config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.events import (
    DecisionStatus,
    OrderIntent,
    OrderType,
    RiskDecision,
    Side,
    Signal,
    TradingStateChanged,
    decode,
    encode,
)
from shared.portfolio import AccountSnapshot
from shared.risk import (
    ExchangeFilters,
    InMemoryStateStore,
    JsonFileStateStore,
    Reason,
    RiskConfig,
    RiskConfigError,
    RiskEngine,
    TradingState,
    parse_exchange_info,
)
from shared.risk import checks as C
from shared.risk.filters import BUNDLED_EXCHANGE_INFO
from shared.risk.states import Lock, StateConflictError, StateRecord

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DAY = 86_400_000
DOCS = Path(__file__).resolve().parent.parent / "docs" / "risk.md"


def config(**kw: Any) -> RiskConfig:
    """The replay profile plus `kw`, every field explicit so the environment cannot leak in."""
    return RiskConfig(**{**RiskConfig.replay().model_dump(), **kw})


def engine(store: InMemoryStateStore | JsonFileStateStore | None = None, filters: ExchangeFilters | None = None,
           **kw: Any) -> RiskEngine:
    e = RiskEngine(config(**kw), store=store, filters=filters, now=T0)
    e.on_market("BTCUSDT", 40_000.0, T0)
    e.on_market("ETHUSDT", 2_000.0, T0)
    return e


def signal(side: Side, *, symbol: str = "BTCUSDT", price: float = 40_000.0, t: int = T0, n: int = 0) -> Signal:
    return Signal.create(symbol=symbol, strategy="test", side=side, price=price, bar_open_time=t - 60_000 + n,
                         bar_close_time=t, market_event_id=f"market-{n:04d}", correlation_id=f"correlation-{n:04d}")


def intent(side: Side, *, symbol: str = "BTCUSDT", quote: float | None = None, qty: float | None = None,
           price: float = 40_000.0, t: int = T0, n: int = 0, limit: float | None = None) -> OrderIntent:
    if quote is None and qty is None:
        quote = 1_000.0 if side is Side.BUY else None
        qty = None if side is Side.BUY else 0.1
    return OrderIntent(event_id=f"intent-{symbol}-{n:04d}", correlation_id=f"correlation-{n:04d}", event_time=t,
                       symbol=symbol, strategy="test", side=side, quantity=qty, quote_quantity=quote,
                       reference_price=price, signal_id=f"signal-{n:04d}", reduce_only=side is Side.SELL,
                       order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET, limit_price=limit)


def account(cash: float = 10_000.0, positions: dict[str, tuple[float, float, float]] | None = None, *,
            equity: float | None = None, peak: float | None = None, day_start: float | None = None,
            losses: int = 0, t: int = T0) -> AccountSnapshot:
    positions = positions or {}
    eq = cash + sum(q * m for q, _, m in positions.values()) if equity is None else equity
    return AccountSnapshot(cash=cash, equity=eq, peak_equity=eq if peak is None else peak,
                           day_start_equity=eq if day_start is None else day_start, realized_pnl=0.0,
                           positions=positions, consecutive_losses=losses, time=t)


LONG = {"BTCUSDT": (0.1, 40_000.0, 40_000.0)}


def reasons(decision: RiskDecision) -> tuple[str, ...]:
    return decision.reasons


# -- the approve path ---------------------------------------------------------------------------

def test_a_buy_signal_becomes_a_quote_sized_intent_and_the_last_look_approves_it() -> None:
    e = engine(order_equity_share=0.5)
    d1, i = e.check_signal(signal(Side.BUY), account())
    assert d1 is None and i is not None  # an approval is the intent alone, counted
    assert i.quote_quantity == 5_000.0 and i.quantity is None and not i.reduced
    d2, sent = e.last_look(i, account(), (), T0)
    assert d2 is None and sent == i
    c = e.counters()
    assert c["layer1"]["approved"] == c["layer2"]["approved"] == 1
    assert e.take_approvals() == (1, 1) and e.take_approvals() == (0, 0)


def test_with_every_limit_on_and_none_binding_an_order_passes_both_layers_unchanged() -> None:
    e = engine(filters=ExchangeFilters.bundled(), max_order_notional=5_000.0, max_position_notional=8_000.0,
               max_gross_exposure=50_000.0, max_position_qty={"BTCUSDT": 1.0}, max_open_positions=3,
               max_orders_per_minute=100, max_orders_per_minute_per_symbol=100, daily_loss_limit=5_000.0,
               daily_loss_pct=20.0, max_drawdown_pct=30.0, price_band_pct=2.0, max_signal_age_s=30.0,
               stale_market_data_s=30.0, loss_streak=5, order_equity_share=0.2)
    # Three holdings, one of them dust: two count, so a third position may open.
    acc = account(cash=20_000.0, positions={"ETHUSDT": (0.001, 2_000.0, 2_000.0), "BNBUSDT": (4.0, 500.0, 500.0),
                                            "XRPUSDT": (100.0, 0.5, 0.5)})
    d1, i = e.check_signal(signal(Side.BUY), acc)
    assert d1 is None and i is not None
    assert (i.order_type, i.quantity, i.limit_price) == (OrderType.MARKET, None, None)
    assert i.quote_quantity == pytest.approx(acc.equity * 0.2)
    d2, sent = e.last_look(i, acc, (), T0)
    assert d2 is None and sent == i


def test_decisions_are_what_RiskDecision_create_builds() -> None:
    e = engine()
    s = signal(Side.SELL)
    d, _ = e.check_signal(s, account())
    assert d == RiskDecision.create(layer=1, subject_id=s.event_id, symbol="BTCUSDT", status=DecisionStatus.REJECTED,
                                    reasons=(Reason.NO_POSITION,), detail=d.detail if d else "",
                                    correlation_id=s.correlation_id, event_time=T0)
    assert d is not None and d.detail


# -- duplicate ----------------------------------------------------------------------------------

def test_duplicate_signal_and_intent_are_rejected() -> None:
    e = engine()
    s = signal(Side.BUY)
    _, i = e.check_signal(s, account())
    d, again = e.check_signal(s, account())
    assert again is None and reasons(d) == (Reason.DUPLICATE,)
    assert i is not None
    assert e.last_look(i, account(), (), T0)[1] is not None
    d2, again2 = e.last_look(i, account(), (), T0)
    assert again2 is None and reasons(d2) == (Reason.DUPLICATE,)


# -- trading states -----------------------------------------------------------------------------

def test_active_approves_both_sides() -> None:
    e = engine()
    assert e.trading_state is TradingState.ACTIVE
    assert e.check_signal(signal(Side.BUY), account())[1] is not None
    assert e.check_signal(signal(Side.SELL, n=1), account(positions=LONG))[1] is not None


def test_reducing_approves_only_orders_that_reduce_exposure() -> None:
    e = engine()
    e.set_trading_state(TradingState.REDUCING, "ops:alice", "exchange maintenance", T0)
    d, i = e.check_signal(signal(Side.BUY), account())
    assert i is None and reasons(d) == (Reason.TRADING_REDUCING,)
    d, i = e.check_signal(signal(Side.SELL, n=1), account(positions=LONG))
    assert i is not None and d is None
    d, i = e.last_look(intent(Side.BUY, n=2), account(), (), T0)
    assert i is None and reasons(d) == (Reason.TRADING_REDUCING,)


def test_halted_approves_nothing() -> None:
    e = engine()
    e.kill("ops:alice", "runaway strategy", T0)
    for s, acc in ((signal(Side.BUY), account()), (signal(Side.SELL, n=1), account(positions=LONG))):
        d, i = e.check_signal(s, acc)
        assert i is None and reasons(d) == (Reason.TRADING_HALTED, Reason.KILL_SWITCH)
    d, i = e.last_look(intent(Side.SELL, n=2), account(positions=LONG), (), T0)
    assert i is None and d.reasons[0] == Reason.TRADING_HALTED


def test_kill_switch_emits_an_event_with_who_and_why_and_an_operator_can_resume() -> None:
    seen: list[TradingStateChanged] = []
    e = RiskEngine(config(), listener=seen.append, now=T0)
    ev = e.kill("ops:alice", "runaway strategy", T0 + 5)
    assert ev is not None and ev.previous == "ACTIVE" and ev.state == "HALTED"
    assert ev.who == "ops:alice" and "KILL_SWITCH" in ev.why and "runaway" in ev.why and ev.until is None
    assert decode(encode(ev)) == ev  # a registered wire event
    back = e.set_trading_state("ACTIVE", "ops:bob", "fixed", T0 + 10)
    assert back is not None and (back.previous, back.state, back.who) == ("HALTED", "ACTIVE", "ops:bob")
    assert seen == e.state_events == [ev, back]
    assert e.trading_state is TradingState.ACTIVE


def test_state_survives_a_restart_on_the_json_file_store(tmp_path: Path) -> None:
    path = tmp_path / "state" / "risk-state.json"
    e = engine(store=JsonFileStateStore(path))
    e.kill("ops:alice", "maintenance", T0)
    restarted = engine(store=JsonFileStateStore(path))
    assert restarted.trading_state is TradingState.HALTED
    assert restarted.check_signal(signal(Side.BUY), account())[1] is None
    assert json.loads(path.read_text())["base"] == "HALTED"
    # The in-memory store behaves the same for a new engine on the same store object.
    mem = InMemoryStateStore()
    engine(store=mem).kill("ops", "x", T0)
    assert engine(store=mem).trading_state is TradingState.HALTED


def test_a_kill_switch_thrown_elsewhere_reaches_a_running_engine() -> None:
    store = InMemoryStateStore()
    executor_side = engine(store=store, state_refresh_s=1.0)
    operator_side = engine(store=store)
    operator_side.kill("ops:alice", "stop now", T0 + 100)
    # Within the refresh interval the running engine may still see ACTIVE; after it, HALTED.
    d, i = executor_side.check_signal(signal(Side.BUY, t=T0 + 2_000), account(), now=T0 + 2_000)
    assert i is None and reasons(d)[0] == Reason.TRADING_HALTED


def test_concurrent_saves_do_not_overwrite_each_other(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    a = engine(store=JsonFileStateStore(path))
    b = engine(store=JsonFileStateStore(path))
    a.kill("ops:alice", "one", T0)
    # b has not re-read the store; its change is applied on top of a's, not over it.
    b.states.add_lock(Lock(Reason.EXCHANGE_BAN, TradingState.HALTED, "418", T0, T0 + 60_000), "exchange", T0)
    rec = JsonFileStateStore(path).load()
    assert rec is not None and rec.base is TradingState.HALTED and [lk.source for lk in rec.locks] == ["EXCHANGE_BAN"]
    with pytest.raises(StateConflictError):
        JsonFileStateStore(path).save(StateRecord(version=1), expected_version=0)


def test_an_unreadable_state_file_fails_closed_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    e = engine(store=JsonFileStateStore(path))
    assert e.trading_state is TradingState.HALTED
    assert e.state_events[-1].why.startswith(Reason.STATE_STORE_UNREADABLE)
    assert path.read_text() == "{not json"  # kept for inspection
    e.set_trading_state("ACTIVE", "ops:alice", "file repaired by hand", T0 + 1)
    assert JsonFileStateStore(path).load() is not None


def test_configured_floor_is_a_deploy_time_kill_switch_and_cannot_lift_a_persisted_halt() -> None:
    e = engine(trading_state="HALTED")
    assert e.trading_state is TradingState.HALTED
    assert e.state_events[0].who == "config"
    store = InMemoryStateStore()
    engine(store=store).kill("ops", "x", T0)
    assert engine(store=store, trading_state="ACTIVE").trading_state is TradingState.HALTED
    reducing = engine(trading_state="REDUCING")
    assert reducing.check_signal(signal(Side.BUY), account())[1] is None


# -- automatic triggers -------------------------------------------------------------------------

def test_daily_loss_limit_sets_reducing_until_the_next_utc_day() -> None:
    e = engine(daily_loss_pct=5.0)
    down = account(equity=9_400.0, day_start=10_000.0, cash=9_400.0)
    d, i = e.check_signal(signal(Side.BUY), down)
    assert i is None and reasons(d) == (Reason.TRADING_REDUCING, Reason.DAILY_LOSS_LIMIT)
    ev = e.state_events[-1]
    assert ev.state == "REDUCING" and ev.who == "risk:daily_loss" and ev.until == T0 + DAY
    # An operator's reset acknowledges it for the rest of the day; the next day starts ACTIVE.
    e.set_trading_state("ACTIVE", "ops:alice", "accepted", T0 + 1)
    assert e.check_signal(signal(Side.BUY, t=T0 + 2, n=1), down, now=T0 + 2)[1] is not None


def test_daily_loss_limit_in_quote_expires_at_midnight() -> None:
    e = engine(daily_loss_limit=500.0, daily_loss_pct=0.0)
    down = account(equity=9_400.0, day_start=10_000.0, cash=9_400.0)
    assert e.evaluate(down, T0 + 10) is TradingState.REDUCING
    e.on_market("BTCUSDT", 40_000.0, T0 + DAY)
    assert e.evaluate(account(t=T0 + DAY), T0 + DAY) is TradingState.ACTIVE
    assert e.state_events[-1].who == "risk:expiry"


def test_drawdown_from_peak_sets_reducing_until_an_operator_resets() -> None:
    e = engine(max_drawdown_pct=20.0)
    acc = account(equity=7_900.0, peak=10_000.0, cash=7_900.0)
    d, i = e.check_signal(signal(Side.BUY), acc)
    assert i is None and reasons(d) == (Reason.TRADING_REDUCING, Reason.MAX_DRAWDOWN)
    assert e.evaluate(acc, T0 + 10 * DAY) is TradingState.REDUCING  # no expiry
    e.set_trading_state("ACTIVE", "ops:alice", "reviewed", T0 + 1)
    assert e.evaluate(acc, T0 + 2) is TradingState.ACTIVE  # the same breach is not re-armed
    assert e.evaluate(account(equity=9_000.0, peak=12_000.0, cash=9_000.0), T0 + 3) is TradingState.REDUCING


def test_loss_streak_starts_a_cooldown_and_the_next_needs_n_new_losses() -> None:
    e = engine(loss_streak=3, loss_streak_cooldown_s=600.0)
    assert e.evaluate(account(losses=2), T0) is TradingState.ACTIVE
    d, i = e.check_signal(signal(Side.BUY), account(losses=3))
    assert i is None and reasons(d) == (Reason.TRADING_REDUCING, Reason.LOSS_STREAK_COOLDOWN)
    assert e.state_events[-1].until == T0 + 600_000
    assert e.evaluate(account(losses=3), T0 + 600_000) is TradingState.ACTIVE
    assert e.evaluate(account(losses=5), T0 + 600_001) is TradingState.ACTIVE
    assert e.evaluate(account(losses=6), T0 + 600_002) is TradingState.REDUCING


def test_exchange_ban_halts_until_retry_after_and_an_operator_cannot_lift_it() -> None:
    e = engine()
    assert e.report_exchange_error(400, -1013, T0, detail="Filter failure: LOT_SIZE") is False
    assert e.report_exchange_error(418, -1003, T0, retry_after_s=120, detail="IP banned until ...") is True
    assert e.trading_state is TradingState.HALTED
    d, i = e.check_signal(signal(Side.SELL), account(positions=LONG))
    assert i is None and reasons(d) == (Reason.TRADING_HALTED, Reason.EXCHANGE_BAN)
    e.set_trading_state("ACTIVE", "ops:alice", "try again", T0 + 1)
    assert e.evaluate(account(), T0 + 2) is TradingState.HALTED
    assert e.evaluate(account(), T0 + 120_000) is TradingState.ACTIVE
    e.report_exchange_error(429, None, T0 + 200_000)  # no Retry-After: the configured default
    assert e.states.record.locks[0].until == T0 + 200_000 + 120_000


# -- freshness and price band -------------------------------------------------------------------

def test_stale_signal() -> None:
    e = engine(max_signal_age_s=30.0)
    d, i = e.check_signal(signal(Side.BUY), account(), now=T0 + 31_000)
    assert i is None and reasons(d) == (Reason.STALE_SIGNAL,)
    assert e.check_signal(signal(Side.BUY, n=1), account(), now=T0 + 29_000)[1] is not None


def test_stale_market_data() -> None:
    e = engine(stale_market_data_s=10.0, max_signal_age_s=0.0)
    d, i = e.check_signal(signal(Side.BUY, t=T0 + 20_000), account(), now=T0 + 20_000)
    assert i is None and reasons(d) == (Reason.STALE_MARKET_DATA,)
    e.on_market("BTCUSDT", 40_000.0, T0 + 19_000)
    assert e.check_signal(signal(Side.BUY, t=T0 + 20_000, n=1), account(), now=T0 + 20_000)[1] is not None
    # Without any feed for a symbol, the signal's own bar close is its latest price.
    fresh = RiskEngine(config(stale_market_data_s=10.0, max_signal_age_s=0.0))
    assert fresh.check_signal(signal(Side.BUY), account(), now=T0 + 5_000)[1] is not None
    d, _ = fresh.check_signal(signal(Side.BUY, n=1), account(), now=T0 + 11_000)
    assert reasons(d) == (Reason.STALE_MARKET_DATA,)


def test_price_band_guards_reference_and_limit_prices() -> None:
    e = engine(price_band_pct=2.0)
    d, i = e.check_signal(signal(Side.BUY, price=41_000.0), account())
    assert i is None and reasons(d) == (Reason.PRICE_BAND,)
    assert e.check_signal(signal(Side.BUY, price=40_700.0, n=1), account())[1] is not None
    d, i = e.last_look(intent(Side.BUY, qty=0.01, limit=35_000.0, n=2), account(), (), T0)
    assert i is None and reasons(d) == (Reason.PRICE_BAND,)


# -- orders in flight, position rule, open positions, rates -------------------------------------

def test_order_in_flight_and_max_num_orders() -> None:
    e = engine(filters=ExchangeFilters.bundled())
    working = intent(Side.BUY, n=9)
    d, i = e.last_look(intent(Side.BUY), account(), [working], T0)
    assert i is None and reasons(d) == (Reason.ORDER_IN_FLIGHT,)
    d, i = e.last_look(intent(Side.BUY, n=1), account(), 200, T0)
    assert i is None and reasons(d) == (Reason.MAX_NUM_ORDERS,)
    assert C.check_in_flight(0, 200) is None


def test_position_rule_long_only() -> None:
    e = engine()
    d, i = e.check_signal(signal(Side.BUY), account(positions=LONG))
    assert i is None and reasons(d) == (Reason.POSITION_OPEN,)
    d, i = e.check_signal(signal(Side.SELL, n=1), account())
    assert i is None and reasons(d) == (Reason.NO_POSITION,)


def test_dust_below_the_exchange_minimum_counts_as_flat() -> None:
    e = engine(filters=ExchangeFilters.bundled())
    dust = {"BTCUSDT": (0.00009, 40_000.0, 40_000.0)}  # 3.6 USDT < 5 USDT minimum notional
    assert e.check_signal(signal(Side.BUY), account(positions=dust))[1] is not None
    d, i = e.check_signal(signal(Side.SELL, n=1), account(positions=dust))
    assert i is None and reasons(d) == (Reason.NO_POSITION,) and "dust" in d.detail
    # Sellable, but a chunk cut below the minimum notional is rejected with the filter's name.
    e = engine(filters=ExchangeFilters.bundled(), max_order_notional=4.0)
    d, i = e.check_signal(signal(Side.SELL, n=2), account(positions=LONG))
    assert i is None and reasons(d) == (Reason.NOTIONAL,)


def test_max_open_positions_counts_working_buys() -> None:
    e = engine(max_open_positions=1)
    d, i = e.check_signal(signal(Side.BUY), account(positions={"ETHUSDT": (1.0, 2_000.0, 2_000.0)}))
    assert i is None and reasons(d) == (Reason.MAX_OPEN_POSITIONS,)
    d, i = e.last_look(intent(Side.BUY), account(), [intent(Side.BUY, symbol="ETHUSDT", n=5)], T0)
    assert i is None and reasons(d) == (Reason.MAX_OPEN_POSITIONS,)
    assert e.check_signal(signal(Side.BUY, n=1), account())[1] is not None


def test_rate_limits_global_and_per_symbol_in_a_sliding_minute() -> None:
    e = engine(max_orders_per_minute=3, max_orders_per_minute_per_symbol=2)
    acc = account()
    for n in range(2):
        assert e.last_look(intent(Side.BUY, n=n, t=T0 + n), acc, (), T0 + n)[1] is not None
    d, i = e.last_look(intent(Side.BUY, n=2, t=T0 + 2), acc, (), T0 + 2)
    assert i is None and reasons(d) == (Reason.RATE_LIMIT_SYMBOL,)
    eth3 = intent(Side.BUY, symbol="ETHUSDT", price=2_000.0, n=3, t=T0 + 3)
    assert e.last_look(eth3, acc, (), T0 + 3)[1] is not None
    d, i = e.last_look(intent(Side.BUY, symbol="ETHUSDT", price=2_000.0, n=4, t=T0 + 4), acc, (), T0 + 4)
    assert i is None and reasons(d) == (Reason.RATE_LIMIT,)
    # The window slides: a minute after the first order there is room again.
    assert e.last_look(intent(Side.BUY, n=5, t=T0 + 60_000), acc, (), T0 + 60_000)[1] is not None


# -- exposure limits and sizing -----------------------------------------------------------------

def test_max_order_notional_cuts_an_order_down_and_reports_it_reduced() -> None:
    e = engine(max_order_notional=2_500.0)
    d, i = e.check_signal(signal(Side.BUY), account())
    assert i is not None and d.status is DecisionStatus.REDUCED and reasons(d) == (Reason.MAX_ORDER_NOTIONAL,)
    assert i.quote_quantity == 2_500.0 and i.reduced
    big = {"BTCUSDT": (1.0, 40_000.0, 40_000.0)}
    d, i = e.check_signal(signal(Side.SELL, n=1), account(positions=big))
    assert i is not None and d.status is DecisionStatus.REDUCED
    assert i.quantity is not None and i.quantity * 40_000.0 <= 2_500.0 + 1e-9
    assert e.reduced == 2 and e.counters()["reductions"] == {"MAX_ORDER_NOTIONAL": 2}


def test_max_order_notional_cut_happens_before_filters_so_the_result_is_exchange_valid() -> None:
    fs = ExchangeFilters.bundled()
    e = engine(filters=fs, max_order_notional=1_234.56789)
    d, i = e.check_signal(signal(Side.SELL), account(positions={"BTCUSDT": (1.0, 40_000.0, 40_000.0)}))
    assert i is not None and d.status is DecisionStatus.REDUCED
    assert i.quantity == 0.03086  # floor(1234.56789 / 40000, 0.00001)
    assert fs["BTCUSDT"].violations(market=True, buy=False, quantity=i.quantity, quote_quantity=None, price=None,
                                    avg_price=40_000.0) == []


def test_max_position_notional_cuts_to_the_headroom_and_rejects_without_one() -> None:
    e = engine(max_position_notional=3_000.0)
    d, i = e.last_look(intent(Side.BUY, quote=5_000.0), account(), (), T0)
    assert i is not None and i.quote_quantity == 3_000.0 and reasons(d) == (Reason.MAX_POSITION_NOTIONAL,)
    # Long-only, a BUY meets a held position only as dust, so the no-headroom case is the check's own.
    cfg = config(max_position_notional=3_000.0)
    cuts: list[str] = []
    assert C.cap_buy_notional(500.0, 40_000.0, cfg, 0.05, 1_000.0, 0.0, 0.0, cuts) == (0.0, (
        (Reason.MAX_POSITION_NOTIONAL,), "position at 2000.00, max 3000.0"))
    assert C.cap_buy_notional(500.0, 40_000.0, cfg, 0.0, 2_800.0, 0.0, 0.0, cuts) == (pytest.approx(200.0), None)
    assert cuts == [Reason.MAX_POSITION_NOTIONAL]


def test_max_position_qty_cuts_a_buy_to_the_quantity_headroom() -> None:
    e = engine(max_position_qty={"BTCUSDT": 0.05})
    d, i = e.check_signal(signal(Side.BUY), account())
    assert i is not None and i.quote_quantity == pytest.approx(2_000.0) and reasons(d) == (Reason.MAX_POSITION_QTY,)
    _, eth = e.check_signal(signal(Side.BUY, symbol="ETHUSDT", price=2_000.0), account())
    assert eth is not None and eth.quote_quantity == 10_000.0


def test_max_gross_exposure_counts_positions_and_working_buys() -> None:
    e = engine(max_gross_exposure=5_000.0)
    eth = {"ETHUSDT": (2.0, 2_000.0, 2_000.0)}
    d, i = e.check_signal(signal(Side.BUY), account(positions=eth))
    assert i is not None and i.quote_quantity == pytest.approx(1_000.0) and reasons(d) == (Reason.MAX_GROSS_EXPOSURE,)
    d, i = e.last_look(intent(Side.BUY, quote=500.0, n=1), account(positions=eth),
                       [intent(Side.BUY, symbol="SOLUSDT", quote=1_000.0, n=2)], T0)
    assert i is None and reasons(d) == (Reason.MAX_GROSS_EXPOSURE,)


def test_insufficient_balance_including_fees_and_working_orders() -> None:
    e = engine()
    d, i = e.check_signal(signal(Side.BUY), account(cash=0.0, equity=0.0))
    assert i is None and reasons(d) == (Reason.INSUFFICIENT_BALANCE,)
    d, i = e.last_look(intent(Side.BUY, quote=20_000.0), account(), (), T0)
    assert i is None and reasons(d) == (Reason.INSUFFICIENT_BALANCE,)
    d, i = e.last_look(intent(Side.BUY, quote=6_000.0, n=1), account(),
                       [intent(Side.BUY, symbol="ETHUSDT", quote=5_000.0, n=2)], T0)
    assert i is None and reasons(d) == (Reason.INSUFFICIENT_BALANCE,)
    # A LIMIT buy pays the fee on top: 0.25 BTC at 40000 is 10000 + 10 fee > 10000 cash.
    d, i = e.last_look(intent(Side.BUY, qty=0.25, limit=40_000.0, n=3), account(), (), T0)
    assert i is None and reasons(d) == (Reason.INSUFFICIENT_BALANCE,)
    # A SELL for more than is held is cut to the holding.
    d, i = e.last_look(intent(Side.SELL, qty=0.2, n=4), account(positions=LONG), (), T0)
    assert i is not None and i.quantity == 0.1 and d.status is DecisionStatus.REDUCED
    assert reasons(d) == (Reason.INSUFFICIENT_BALANCE,)


def test_unknown_and_halted_symbols_with_filters_loaded() -> None:
    doc = json.loads(BUNDLED_EXCHANGE_INFO.read_text())
    doc["symbols"][1]["status"] = "BREAK"
    e = engine(filters=parse_exchange_info(doc))
    d, i = e.check_signal(signal(Side.BUY, symbol="SOLUSDT", price=100.0), account())
    assert i is None and reasons(d) == (Reason.UNKNOWN_SYMBOL,)
    d, i = e.check_signal(signal(Side.BUY, symbol="ETHUSDT", price=2_000.0), account())
    assert i is None and reasons(d) == (Reason.SYMBOL_NOT_TRADING,)


# -- restart, counters, config ------------------------------------------------------------------

def test_engine_snapshot_keeps_dedup_and_rate_windows_across_a_restart() -> None:
    store = InMemoryStateStore()
    e = engine(store=store, max_orders_per_minute=1)
    s = signal(Side.BUY)
    _, i = e.check_signal(s, account())
    assert i is not None and e.last_look(i, account(), (), T0)[1] is not None
    snap = json.loads(json.dumps(e.snapshot()))
    again = engine(store=store, max_orders_per_minute=1)
    again.restore(snap)
    assert reasons(again.check_signal(s, account())[0]) == (Reason.DUPLICATE,)
    d, i2 = again.last_look(intent(Side.BUY, n=1, t=T0 + 1), account(), (), T0 + 1)
    assert i2 is None and reasons(d) == (Reason.RATE_LIMIT,)


def test_counters_are_plain_data_for_telemetry() -> None:
    e = engine(max_order_notional=1_000.0)
    e.check_signal(signal(Side.BUY), account())
    e.check_signal(signal(Side.SELL, n=1), account())
    e.kill("ops", "x", T0)
    c = e.counters()
    assert json.loads(json.dumps(c)) == c
    assert c["trading_state"] == "HALTED" and c["trading_state_level"] == 2
    assert c["layer1"] == {"approved": 0, "reduced": 1, "rejected": 1}
    assert c["rejections"] == {"NO_POSITION": 1} and c["reduced"] == 1


def test_with_overrides_from_the_class_and_from_an_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETFLOW_RISK_PRICE_BAND_PCT", "3")
    c = RiskConfig.with_overrides(["max_order_notional=500", "TRADING_STATE=halted",
                                   'max_position_qty={"BTCUSDT": 0.5}'])
    assert c.max_order_notional == 500.0 and c.trading_state is TradingState.HALTED
    assert c.max_position_qty == {"BTCUSDT": 0.5} and c.price_band_pct == 3.0  # env below overrides
    d = RiskConfig.replay().with_overrides(["price_band_pct=1"])
    assert d.price_band_pct == 1.0 and d.max_drawdown_pct == 0.0


@pytest.mark.parametrize(("pair", "message"), [
    ("max_ordr_notional=5", "did you mean 'max_order_notional'"),
    ("max_order_notional=lots", "max_order_notional"),
    ("max_order_notional", "KEY=VALUE"),
    ("daily_loss_pct=250", "daily_loss_pct"),
    ("max_position_qty=0.5", "JSON object"),
    ("trading_state=PAUSED", "trading_state"),
    ("max_order_notional=nan", "max_order_notional"),
])
def test_with_overrides_rejects_unknown_keys_and_bad_values(pair: str, message: str) -> None:
    with pytest.raises(RiskConfigError, match=re.escape(message)):
        RiskConfig.with_overrides([pair])


def test_config_from_environment_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text("[risk]\nmax_open_positions = 3\nprice_band_pct = 4.0\n")
    monkeypatch.setenv("MARKETFLOW_RISK_FILE", str(path))
    monkeypatch.setenv("MARKETFLOW_RISK_PRICE_BAND_PCT", "2.5")
    c = RiskConfig()
    assert c.max_open_positions == 3 and c.price_band_pct == 2.5  # environment over file
    j = tmp_path / "risk.json"
    j.write_text(json.dumps({"max_drawdown_pct": 12}))
    assert RiskConfig.load(j).max_drawdown_pct == 12.0
    j.write_text(json.dumps({"max_drawdwn_pct": 12}))
    with pytest.raises(RiskConfigError, match="max_drawdwn_pct"):
        RiskConfig.load(j)


def test_defaults_and_replay_profile() -> None:
    d = RiskConfig.model_construct()
    assert (d.max_order_notional, d.max_drawdown_pct, d.daily_loss_pct, d.loss_streak) == (100_000.0, 50.0, 25.0, 0)
    r = RiskConfig.replay()
    assert r.max_order_notional == r.max_drawdown_pct == r.max_orders_per_minute == 0
    assert r.price_band_pct == d.price_band_pct and r.stale_market_data_s == d.stale_market_data_s


def test_docs_list_every_key_env_var_default_and_reason_code() -> None:
    text = DOCS.read_text()
    for row in RiskConfig.model_construct().describe():
        assert f"`{row['key']}`" in text, row["key"]
        assert row["env"] in text, row["env"]
    for reason in Reason:
        assert f"`{reason.value}`" in text, reason.value
    for check in C.CHECKS:
        for key in check.keys:
            assert key in RiskConfig.model_fields


def test_layer_1_intents_equal_what_the_validator_builds_and_a_bad_size_raises() -> None:
    from shared.risk import engine as engine_module

    e = engine(order_equity_share=0.5)
    _, i = e.check_signal(signal(Side.BUY), account())
    assert i is not None and OrderIntent.model_validate(i.model_dump()) == i
    for qty, quote in ((None, None), (1.0, 5.0), (0.0, None), (None, -1.0), (float("nan"), None),
                       (None, float("inf"))):
        with pytest.raises(ValueError, match="invalid order"):
            engine_module._check_size(qty, quote)
    engine_module._check_size(0.5, None)
    engine_module._check_size(None, 100.0)


def test_a_disabled_rate_limit_keeps_no_order_log() -> None:
    """With both limits off (the replay profile), a long run must not grow the windows."""
    from shared.risk.throttle import RateLimiter

    rates = RateLimiter(0, 0)
    for t in range(0, 10_000_000, 1_000):
        rates.record("BTCUSDT", t)
        assert rates.blocked("BTCUSDT", t) == 0
    assert not rates.global_window.times and rates.snapshot() == {"*": []}


def test_daily_loss_used_is_the_share_of_the_tighter_limit() -> None:
    from shared.portfolio import AccountSnapshot
    from shared.risk import RiskConfig
    from shared.risk.checks import daily_loss_breach, daily_loss_used

    def account(equity: float) -> AccountSnapshot:
        return AccountSnapshot(equity, equity, 1000.0, 1000.0, 0.0, {}, 0, 0)

    pct = RiskConfig(daily_loss_limit=0.0, daily_loss_pct=10.0)  # 100 of 1000
    assert daily_loss_used(account(1000.0), pct) == 0.0
    assert daily_loss_used(account(1010.0), pct) == 0.0  # a gain
    assert daily_loss_used(account(920.0), pct) == pytest.approx(0.8)
    assert daily_loss_breach(account(920.0), pct) is None
    assert daily_loss_used(account(900.0), pct) == pytest.approx(1.0)
    assert daily_loss_breach(account(900.0), pct) is not None
    both = RiskConfig(daily_loss_limit=50.0, daily_loss_pct=10.0)  # the absolute 50 is tighter
    assert daily_loss_used(account(960.0), both) == pytest.approx(0.8)
    assert daily_loss_used(account(900.0), RiskConfig(daily_loss_limit=0.0, daily_loss_pct=0.0)) == 0.0
