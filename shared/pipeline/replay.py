"""The in-process pipeline: market data -> signals -> risk -> executor (paper) -> positions.

Every stage is the same handler the Azure Functions and the executor call; this module only
wires them together on one thread, in event-time order, so a replay is deterministic: the same
bars give the same signals, orders and fills. Fills happen at the next bar's open, before that
bar's close is evaluated, exactly as a live market order sent after a close would.
"""

from __future__ import annotations

import time as _time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.events import ExecutionReport, OrderIntent, OrderStatus, RiskDecision, Signal
from shared.execution import Executor, PaperBroker
from shared.execution.paper import FeeMode
from shared.market import Bar
from shared.portfolio import ClosedTrade, Position, PositionBook
from shared.risk import RiskConfig, RiskEngine

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
    rejections: Counter[str] = field(default_factory=Counter)
    reduced: int = 0
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
                 risk_config: RiskConfig | None = None) -> None:
        self.book = PositionBook(cash=cash)
        self.signal_handler = SignalHandler(strategy, params)
        engine = RiskEngine(risk_config or RiskConfig())
        self.risk = RiskHandler(engine, self.book.snapshot_account)
        self.broker = PaperBroker(commission=commission, fee_mode=fee_mode)
        self.executor = Executor(self.broker, engine, self.book.snapshot_account)
        self.equity: list[float] = []
        self.signals: list[Signal] = []
        self.decisions: list[RiskDecision] = []
        self.intents: list[OrderIntent] = []
        self.reports: list[ExecutionReport] = []

    def on_bar(self, bar: Bar) -> None:
        if self.broker.pending:
            for report in self.broker.on_bar(bar):
                self._on_report(report)
        self.equity.append(self.book.mark(bar.symbol, bar.close, bar.close_time))
        signal = self.signal_handler.on_bar(bar)
        if signal is not None:
            self._on_signal(signal, bar.close_time)

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
            if not decision2.approved:
                self.risk.rejections.update(decision2.reasons)
        if report is not None:
            self._on_report(report)

    def _on_report(self, report: ExecutionReport) -> None:
        self.reports.append(report)
        self.executor.on_report(report)
        if report.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
            self.book.apply(report)


def run_replay(bars: Sequence[Bar], strategy: str = "sma_cross", params: Mapping[str, Any] | None = None,
               *, cash: float = 10_000.0, commission: float = 0.001, fee_mode: FeeMode = "quote",
               risk_config: RiskConfig | None = None,
               progress: Callable[[int], None] | None = None, progress_every: int = 10_000) -> ReplayResult:
    """Replay closed bars of one symbol through the whole pipeline."""
    if not bars:
        raise ValueError("no bars to replay")
    pipe = Pipeline(strategy, params, cash=cash, commission=commission, fee_mode=fee_mode,
                    risk_config=risk_config)
    on_bar = pipe.on_bar
    started = _time.perf_counter()
    if progress is None:
        for bar in bars:
            on_bar(bar)
    else:
        for i, bar in enumerate(bars, 1):
            on_bar(bar)
            if i % progress_every == 0:
                progress(progress_every)
        progress(len(bars) % progress_every)
    elapsed = _time.perf_counter() - started
    book = pipe.book
    events = len(bars) + len(pipe.signals) + len(pipe.decisions) + len(pipe.intents) + len(pipe.reports)
    return ReplayResult(
        symbol=bars[0].symbol, strategy=strategy, params=dict(pipe.signal_handler.params), cash=cash,
        commission=commission, bars=bars, equity=pipe.equity, trades=list(book.closed_trades),
        signals=pipe.signals, decisions=pipe.decisions, intents=pipe.intents, reports=pipe.reports,
        open_position=book.position(bars[0].symbol), final_equity=pipe.equity[-1],
        rejections=pipe.risk.rejections, reduced=pipe.risk.reduced, events=events, elapsed_s=elapsed)
