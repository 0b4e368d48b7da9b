"""Property tests of the risk engine over arbitrary sequences of signals, fills, price marks,
redeliveries, restarts, operator actions, exchange bans and day changes:

(a) no approved order breaches a configured limit (layer 2 against exact exposure and orders in
    flight, layer 1 the per-order ones); (b) HALTED approves nothing and REDUCING nothing that raises
exposure; (c) every approved quantity satisfies the symbol's filters; (d) the same sequence always
yields the same decisions and state events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from shared.events import (
    DecisionStatus,
    ExecutionReport,
    Fill,
    OrderIntent,
    OrderStatus,
    RiskDecision,
    Side,
    Signal,
    encode,
)
from shared.portfolio import AccountSnapshot, PositionBook
from shared.risk import ExchangeFilters, InMemoryStateStore, RiskConfig, RiskEngine, TradingState
from shared.risk.filters import floor_to

T0 = 1_704_067_200_000
DAY = 86_400_000
START = {"BTCUSDT": 40_000.0, "ETHUSDT": 2_000.0}
FILTERS = ExchangeFilters.bundled()
LIMITS: dict[str, Any] = {
    "max_order_notional": 3_000.0, "max_position_notional": 2_500.0, "max_position_qty": {"ETHUSDT": 1.0},
    "max_gross_exposure": 4_000.0, "max_open_positions": 2, "max_orders_per_minute": 3,
    "max_orders_per_minute_per_symbol": 2, "daily_loss_limit": 150.0, "daily_loss_pct": 1.0,
    "max_drawdown_pct": 2.0, "price_band_pct": 3.0, "max_signal_age_s": 30.0, "stale_market_data_s": 60.0,
    "loss_streak": 2, "loss_streak_cooldown_s": 300.0, "order_equity_share": 0.6, "exchange_ban_s": 90.0,
}
CONFIG = RiskConfig(**{**RiskConfig.replay().model_dump(), **LIMITS})
EPS = 1e-6

symbols = st.sampled_from(sorted(START))
tick = st.tuples(st.just("tick"), symbols, st.one_of(st.floats(-0.02, 0.02), st.floats(-0.15, 0.15)),
                 st.sampled_from([1, 5, 20, 61]))
signal = st.tuples(st.just("signal"), symbols, st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
                   st.one_of(st.just(0.0), st.floats(-0.01, 0.01), st.floats(-0.05, 0.05)),
                   st.sampled_from([0, 0, 0, 0, 10, 45]))
fill = st.tuples(st.just("fill"), st.sampled_from(["received", "bnb"]))
STEPS = {
    "signal": signal, "tick": tick, "fill": fill,
    "gap": st.tuples(st.just("gap"), st.integers(30, 600)),
    "redeliver": st.tuples(st.just("redeliver")),
    "restart": st.tuples(st.just("restart")),
    "operator": st.tuples(st.just("operator"), st.sampled_from(["ACTIVE", "ACTIVE", "REDUCING", "HALTED"])),
    "ban": st.tuples(st.just("ban"), st.integers(1, 300)),
    "day": st.tuples(st.just("day")),
}
# Weighted: mostly signals, price ticks and fills, so most sequences trade.
WEIGHTS = ["signal"] * 6 + ["tick"] * 3 + ["fill"] * 3 + ["gap", "redeliver", "restart", "operator", "ban", "day"]
ops = st.sampled_from(WEIGHTS).flatmap(STEPS.__getitem__)


@dataclass
class Sim:
    """A paper account driven through both risk layers, checking (a)-(c) at every approval."""

    t: int = T0
    prices: dict[str, float] = field(default_factory=lambda: dict(START))
    store: InMemoryStateStore = field(default_factory=InMemoryStateStore)
    pending: list[OrderIntent] = field(default_factory=list)
    sent: list[tuple[int, str]] = field(default_factory=list)
    log: list[bytes] = field(default_factory=list)
    last_signal: Signal | None = None
    last_intent: OrderIntent | None = None
    n: int = 0

    def __post_init__(self) -> None:
        self.book = PositionBook(10_000.0)
        self.book.deposit("BNB", 5.0)
        self.book.mark_asset("BNB", 300.0)
        self.engine = RiskEngine(CONFIG, filters=FILTERS, store=self.store, now=self.t)
        for sym, px in self.prices.items():
            self._mark(sym, px)

    # -- the operations ---------------------------------------------------------------------
    def tick(self, symbol: str, move: float, dt: int) -> None:
        """Time passes; every symbol gets a fresh price, `symbol` a moved one."""
        self.t += dt * 1000
        for sym, px in self.prices.items():
            self._mark(sym, px * (1 + move) if sym == symbol else px)

    def gap(self, dt: int) -> None:
        """Time passes without market data (a dead feed)."""
        self.t += dt * 1000

    def day(self) -> None:
        self.t = (self.t // DAY + 1) * DAY + 1_000
        for sym, px in self.prices.items():
            self._mark(sym, px)

    def signal(self, symbol: str, side: Side, offset: float, age: int) -> None:
        self.n += 1
        s = Signal.create(symbol=symbol, strategy="prop", side=side, price=round(self.prices[symbol] * (1 + offset), 2),
                          bar_open_time=self.t - 60_000 - age * 1000 + self.n, bar_close_time=self.t - age * 1000,
                          market_event_id=f"market-{self.n:06d}", correlation_id=f"correlation-{self.n:06d}")
        self.last_signal = s
        d1, intent = self.engine.check_signal(s, self.book.snapshot_account(), now=self.t)
        self._record(d1, intent)
        if intent is None:
            return
        self._check_approval(1, d1, intent, self.book.snapshot_account())
        self.last_intent = intent
        account = self.book.snapshot_account()
        d2, sent = self.engine.last_look(intent, account, tuple(self.pending), self.t)
        self._record(d2, sent)
        if sent is not None:
            self._check_approval(2, d2, sent, account)
            # The last look may only cut or round an order, never change what kind of order it is.
            assert (sent.order_type, sent.side, sent.symbol, sent.event_id) == (
                intent.order_type, intent.side, intent.symbol, intent.event_id)
            assert (sent.quote_quantity or 0.0) <= (intent.quote_quantity or 0.0) + EPS
            assert (sent.quantity or 0.0) <= (intent.quantity or 0.0) + EPS
            self.pending.append(sent)
            self.sent.append((self.t, sent.symbol))

    def fill(self, fee_mode: str) -> None:
        if not self.pending:
            return
        o = self.pending.pop(0)
        px = self.prices[o.symbol]
        fs = FILTERS[o.symbol]
        base = fs.base_asset
        if o.side is Side.BUY:
            assert o.quote_quantity is not None
            qty = floor_to(o.quote_quantity / px, fs.lot_step, fs.lot_dp)
            fee, fee_asset = (qty * 0.001, base) if fee_mode == "received" else (qty * px * 0.00075 / 300.0, "BNB")
        else:
            assert o.quantity is not None
            qty = o.quantity
            fee, fee_asset = (qty * px * 0.001, "USDT") if fee_mode == "received" else (qty * px * 0.00075 / 300.0,
                                                                                        "BNB")
        if qty <= 0:
            return
        self.n += 1
        report = ExecutionReport.create(
            intent=o, status=OrderStatus.FILLED, venue="paper", order_id=self.n, base_asset=base, quote_asset="USDT",
            fills=(Fill(price=px, quantity=qty, commission=fee, commission_asset=fee_asset, trade_id=self.n),),
            event_time=self.t)
        self.book.apply(report)  # raises if a SELL exceeded the holding
        assert self.book.cash >= -EPS  # a BUY never spent more than the free cash

    def redeliver(self) -> None:
        account = self.book.snapshot_account()
        if self.last_signal is not None:
            d, i = self.engine.check_signal(self.last_signal, account, now=self.t)
            self._record(d)
            assert i is None
        if self.last_intent is not None:
            d, i = self.engine.last_look(self.last_intent, account, tuple(self.pending), self.t)
            self._record(d)
            assert i is None

    def restart(self) -> None:
        snap = json.loads(json.dumps(self.engine.snapshot()))
        book = json.loads(json.dumps(self.book.snapshot()))
        state = self.engine.trading_state
        self.engine = RiskEngine(CONFIG, filters=FILTERS, store=self.store, now=self.t)
        self.engine.restore(snap)
        self.book = PositionBook.restore(book)
        assert self.engine.trading_state is state

    def operator(self, state: str) -> None:
        self.engine.set_trading_state(state, "ops:prop", "test", self.t)

    def ban(self, retry_s: int) -> None:
        self.engine.report_exchange_error(418, -1003, self.t, retry_after_s=retry_s, detail="banned")

    # -- invariants ---------------------------------------------------------------------------
    def _check_approval(self, layer: int, d: RiskDecision | None, o: OrderIntent, account: AccountSnapshot) -> None:
        # A plain approval is no decision event; a cut-down one is REDUCED and names the cuts.
        assert d is None or (d.status is DecisionStatus.REDUCED and d.reasons and o.reduced)
        buy = o.side is Side.BUY
        # (b) the state the decision was made in allows it
        state = self.engine.trading_state
        assert state is not TradingState.HALTED
        assert not (state is TradingState.REDUCING and buy)
        # (c) the exchange filters hold for what is sent
        px = self.prices[o.symbol]
        fs = FILTERS[o.symbol]
        assert fs.violations(market=True, buy=buy, quantity=o.quantity, quote_quantity=o.quote_quantity,
                             price=None, avg_price=px) == []
        # (a) the limits hold
        held = account.qty(o.symbol)
        notional = o.quote_quantity if buy else (o.quantity or 0.0) * px
        assert notional is not None and notional <= LIMITS["max_order_notional"] + EPS
        assert abs(o.reference_price / px - 1) <= LIMITS["price_band_pct"] / 100 + EPS
        if not buy:
            assert o.quantity is not None and 0 < o.quantity <= held + EPS
            return
        assert o.quote_quantity is not None
        assert o.quote_quantity <= account.cash + EPS
        assert held == 0 or fs.is_dust(held, px)
        if layer == 1:
            return
        pending_buys = [p for p in self.pending if p.side is Side.BUY]
        pending_total = sum(p.quote_quantity or 0.0 for p in pending_buys)
        assert all(p.symbol != o.symbol for p in self.pending)  # one working order per symbol
        assert o.quote_quantity <= account.cash - pending_total + EPS
        assert held * px + o.quote_quantity <= LIMITS["max_position_notional"] + EPS
        max_qty = LIMITS["max_position_qty"].get(o.symbol)
        if max_qty is not None:
            assert held + o.quote_quantity / px <= max_qty + EPS
        gross = sum(q * m for q, _, m in account.positions.values()) + pending_total
        assert gross + o.quote_quantity <= LIMITS["max_gross_exposure"] + EPS
        others = {s for s, (q, _, m) in account.positions.items() if s != o.symbol and FILTERS[s].holds(q, m)}
        others |= {p.symbol for p in pending_buys if p.symbol != o.symbol}
        assert len(others) + 1 <= LIMITS["max_open_positions"]
        window = [s for (ts, s) in self.sent if ts > self.t - 60_000]
        assert len(window) + 1 <= LIMITS["max_orders_per_minute"]
        assert window.count(o.symbol) + 1 <= LIMITS["max_orders_per_minute_per_symbol"]

    # -- helpers ------------------------------------------------------------------------------
    def _mark(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price
        self.book.mark(symbol, price, self.t)
        self.engine.on_market(symbol, price, self.t)

    def _record(self, d: RiskDecision | None, approved: OrderIntent | None = None) -> None:
        """The decision event, or for a plain approval the order it let through."""
        assert d is not None or approved is not None
        self.log.append(encode(d if d is not None else approved))  # type: ignore[arg-type]

    def run(self, steps: list[tuple[Any, ...]]) -> list[bytes]:
        for step in steps:
            getattr(self, step[0])(*step[1:])
        return self.log + [encode(e) for e in self.engine.state_events]


@settings(max_examples=600)
@given(steps=st.lists(ops, min_size=10, max_size=80))
def test_no_approval_breaches_a_limit_a_state_or_a_filter_and_runs_are_deterministic(steps: list[Any]) -> None:
    sim = Sim()
    first = sim.run(steps)
    assert Sim().run(steps) == first  # (d)
    approved = sum(1 for b in sim.log if b'"status":"REJECTED"' not in b)  # intents and REDUCED decisions
    event(f"approvals: {'0' if not approved else '1-3' if approved < 4 else '4-9' if approved < 10 else '10+'}")


def test_a_fixed_walk_reaches_the_main_outcomes() -> None:
    """Approvals, reductions and rejections for the main reasons, so (a)-(c) are not vacuous."""
    sim = Sim()
    sim.signal("BTCUSDT", Side.BUY, 0.0, 0)    # cut to the order and position limits: REDUCED
    sim.signal("ETHUSDT", Side.BUY, 0.0, 0)    # cut again; layer 2 also to the gross exposure left
    sim.fill("received")
    sim.fill("received")
    sim.tick("BTCUSDT", 0.01, 61)
    sim.signal("BTCUSDT", Side.SELL, 0.0, 0)   # sells what is held after the base-asset fee
    sim.fill("bnb")
    sim.signal("BTCUSDT", Side.SELL, 0.0, 0)   # NO_POSITION
    sim.signal("BTCUSDT", Side.BUY, 0.04, 0)   # PRICE_BAND
    sim.redeliver()                            # DUPLICATE at both layers
    sim.tick("ETHUSDT", -0.08, 1)
    sim.tick("ETHUSDT", -0.08, 60)             # -1.4 % on the day: DAILY_LOSS_LIMIT -> REDUCING
    sim.signal("BTCUSDT", Side.BUY, 0.0, 0)
    sim.ban(60)
    sim.signal("ETHUSDT", Side.SELL, 0.0, 0)   # TRADING_HALTED, EXCHANGE_BAN
    logged = [json.loads(b) for b in sim.log]
    decisions = [e for e in logged if e["type"] == "risk_decision"]
    assert {d["status"] for d in decisions} == {"REDUCED", "REJECTED"}
    assert any(e["type"] == "order_intent" and not e["reduced"] for e in logged)  # a plain approval
    assert {r for d in decisions for r in d["reasons"]} == {
        "MAX_ORDER_NOTIONAL", "MAX_POSITION_NOTIONAL", "MAX_POSITION_QTY", "MAX_GROSS_EXPOSURE", "NO_POSITION",
        "PRICE_BAND", "DUPLICATE", "TRADING_REDUCING", "DAILY_LOSS_LIMIT", "TRADING_HALTED", "EXCHANGE_BAN"}
