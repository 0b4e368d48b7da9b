"""The in-process pipeline: market data -> signals -> risk -> executor (paper) -> positions.

Every stage is the same handler the Azure Functions and the executor call; this module only
wires them together on one thread, in event-time order, so a replay is deterministic: the same
bars give the same signals, orders and fills. Fills happen at the next bar's open, before that
bar's close is evaluated, exactly as a live market order sent after a close would.
"""

from __future__ import annotations

import gc
import time as _time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.events import ExecutionReport, OrderIntent, OrderStatus, RiskDecision, Signal, TradingStateChanged
from shared.execution import Executor, PaperBroker
from shared.execution.paper import FeeMode
from shared.market import Bar
from shared.portfolio import ClosedTrade, Position, PositionBook
from shared.risk import ExchangeFilters, RiskConfig, RiskEngine, StateStore

from .risk import RiskHandler
from .signals import SignalHandler


@dataclass
class ReplayResult:
    """Everything a replay produced; the report is written from this alone."""

    symbol: str
    strategy: str
    params: dict[str, Any]
    cash: float
    commission: float
    bars: Sequence[Bar]
    equity: list[float]                      # marked at each bar's close, aligned with bars
    trades: list[ClosedTrade]
    signals: list[Signal]
    decisions: list[RiskDecision]            # layer 1 and layer 2
    intents: list[OrderIntent]               # approved by layer 1
    reports: list[ExecutionReport]
    open_position: Position | None
    final_equity: float
    rejections: Counter[str] = field(default_factory=Counter)   # reason code -> rejections, both layers
    reduced: int = 0                                            # decisions cut down to a limit, both layers
    risk: dict[str, Any] = field(default_factory=dict)          # RiskEngine.counters() at the end
    state_events: list[TradingStateChanged] = field(default_factory=list)
    events: int = 0
    elapsed_s: float = 0.0

    @property
    def fills(self) -> list[ExecutionReport]:
        return [r for r in self.reports if r.fills]

    @property
    def commissions(self) -> float:
        """Commission of closed round trips (both legs), as backtesting.py counts it."""
        return sum(t.commission for t in self.trades)


class Pipeline:
    """The wired handlers of one account. `on_bar` is the whole per-bar path."""

    def __init__(self, strategy: str, params: Mapping[str, Any] | None = None, *, cash: float = 10_000.0,
                 commission: float = 0.001, fee_mode: FeeMode = "quote",
                 risk_config: RiskConfig | None = None, exchange_filters: ExchangeFilters | None = None,
                 state_store: StateStore | None = None) -> None:
        self.book = PositionBook(cash=cash)
        self.signal_handler = SignalHandler(strategy, params)
        engine = self.engine = RiskEngine(risk_config or RiskConfig.replay(), filters=exchange_filters,
                                          store=state_store)
        self._on_market = engine.on_market
        self.risk = RiskHandler(engine, self.book.snapshot_account)
        self.broker = PaperBroker(commission=commission, fee_mode=fee_mode)
        self.executor = Executor(self.broker, engine, self.book.snapshot_account)
        self.equity: list[float] = []
        self.signals: list[Signal] = []
        self.decisions: list[RiskDecision] = []
        self.intents: list[OrderIntent] = []
        self.reports: list[ExecutionReport] = []
        # Bound once: on_bar runs per bar and is the replay's hot path.
        self._mark = self.book.mark
        self._record_equity = self.equity.append
        self._signal_of = self.signal_handler.on_bar

    def on_bar(self, bar: Bar) -> None:
        if self.broker.pending:
            for report in self.broker.on_bar(bar):
                self._on_report(report)
        symbol, close, t = bar.symbol, bar.close, bar.close_time
        self._record_equity(self._mark(symbol, close, t))
        self._on_market(symbol, close, t)
        signal = self._signal_of(bar)
        if signal is not None:
            self._on_signal(signal, t)

    def _on_signal(self, signal: Signal, now: int) -> None:
        self.signals.append(signal)
        decision, intent = self.risk.on_signal(signal)
        self.decisions.append(decision)
        if intent is None:
            return
        self.intents.append(intent)
        decision2, report = self.executor.on_intent(intent, now)
        if decision2 is not None:
            self.decisions.append(decision2)
        if report is not None:
            self._on_report(report)

    def _on_report(self, report: ExecutionReport) -> None:
        self.reports.append(report)
        self.executor.on_report(report)
        if report.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
            self.book.apply(report)


def run_replay(bars: Sequence[Bar], strategy: str = "sma_cross", params: Mapping[str, Any] | None = None,
               *, cash: float = 10_000.0, commission: float = 0.001, fee_mode: FeeMode = "quote",
               risk_config: RiskConfig | None = None, exchange_filters: ExchangeFilters | None = None,
               state_store: StateStore | None = None,
               progress: Callable[[int], None] | None = None, progress_every: int = 10_000) -> ReplayResult:
    """Replay closed bars of one symbol through the whole pipeline (both risk layers).

    Without `risk_config` the replay uses `RiskConfig.replay()` (backtest semantics, documented
    in docs/risk.md); pass `RiskConfig()` or an override of it to replay with the live limits.
    """
    if not bars:
        raise ValueError("no bars to replay")
    pipe = Pipeline(strategy, params, cash=cash, commission=commission, fee_mode=fee_mode,
                    risk_config=risk_config, exchange_filters=exchange_filters, state_store=state_store)
    on_bar = pipe.on_bar
    # The loop allocates many small acyclic objects (events, decisions); cyclic GC passes over the
    # whole heap (bars included) cost ~15 % of replay time and find nothing, so they are paused.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    started = _time.perf_counter()
    try:
        if progress is None:
            for bar in bars:
                on_bar(bar)
        else:
            for i, bar in enumerate(bars, 1):
                on_bar(bar)
                if i % progress_every == 0:
                    progress(progress_every)
            progress(len(bars) % progress_every)
    finally:
        elapsed = _time.perf_counter() - started
        if gc_was_enabled:
            gc.enable()
    book = pipe.book
    events = len(bars) + len(pipe.signals) + len(pipe.decisions) + len(pipe.intents) + len(pipe.reports)
    return ReplayResult(
        symbol=bars[0].symbol, strategy=strategy, params=dict(pipe.signal_handler.params), cash=cash,
        commission=commission, bars=bars, equity=pipe.equity, trades=list(book.closed_trades),
        signals=pipe.signals, decisions=pipe.decisions, intents=pipe.intents, reports=pipe.reports,
        open_position=book.position(bars[0].symbol), final_equity=pipe.equity[-1],
        rejections=Counter(pipe.engine.rejections), reduced=pipe.engine.reduced, risk=pipe.engine.counters(),
        state_events=list(pipe.engine.state_events), events=events, elapsed_s=elapsed)
