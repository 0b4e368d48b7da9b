"""The in-process pipeline: market data -> signals -> risk -> executor (paper) -> positions.

Every stage is the same handler the Azure Functions and the executor call; this module only
wires them together on one thread, in event-time order, so a replay is deterministic: the same
bars give the same signals, orders and fills. Fills happen at the next bar's open (or, on trade
data, at the next trade's price), before that bar's close is evaluated, exactly as a live market
order sent after a close would.
"""

from __future__ import annotations

import time as _time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared import telemetry, topology
from shared.aggregation import BarAggregator
from shared.events import ExecutionReport, OrderIntent, RiskDecision, Signal, TradingStateChanged
from shared.execution import Executor, MemoryIntentStore, PaperVenue, run_sync
from shared.execution.paper import FeeMode
from shared.execution.venue import VenueOrder
from shared.gc_pause import gc_paused
from shared.market import Bar, Tick
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
    ignored: int = 0                         # redelivered or late market events, counted and skipped
    elapsed_s: float = 0.0

    @property
    def fills(self) -> list[ExecutionReport]:
        return [r for r in self.reports if r.fills]

    @property
    def commissions(self) -> float:
        """Commission of closed round trips (both legs), as backtesting.py counts it."""
        return sum(t.commission for t in self.trades)


class Pipeline:
    """The wired handlers of one account, in event-time order.

    `on_bars` (or `on_bar`) is the bar-data path: pending orders fill at the bar's open, then the
    bar's close is marked and evaluated. `on_trades` (`on_trade`) is the trade-data path: trades
    build bars, and pending orders fill at the next trade's price. A redelivered or late bar (open
    time not after the last one of its symbol) or trade (id not after the last one) is counted and
    ignored before it can touch the broker or the book.
    """

    def __init__(self, strategy: str, params: Mapping[str, Any] | None = None, *, cash: float = 10_000.0,
                 commission: float = 0.001, fee_mode: FeeMode = "quote",
                 risk_config: RiskConfig | None = None, exchange_filters: ExchangeFilters | None = None,
                 state_store: StateStore | None = None, interval: str = "1m") -> None:
        self.strategy, self.cash, self.commission = strategy, cash, commission
        self.book = PositionBook(cash=cash)
        self.signal_handler = SignalHandler(strategy, params)
        engine = self.engine = RiskEngine(risk_config or RiskConfig.replay(), filters=exchange_filters,
                                          store=state_store)
        self._on_market = engine.on_market
        self.risk = RiskHandler(engine, self.book.snapshot_account)
        self.venue = PaperVenue(commission=commission, fee_mode=fee_mode)
        # The executor is the book's single writer: it books the fills of its own orders.
        self.executor = Executor(self.venue, engine, self.book, MemoryIntentStore())
        self._on_update = self.executor.on_order_update
        self.interval = interval
        self.bars: list[Bar] = []           # accepted bars (built from trades in trade mode)
        self.equity: list[float] = []
        self.signals: list[Signal] = []
        self.decisions: list[RiskDecision] = []
        self.intents: list[OrderIntent] = []
        self.reports: list[ExecutionReport] = []
        self.ignored = 0
        self.trades_in = 0                  # accepted trades (trade path); the bar path counts bars
        self._last: dict[str, int] = {}     # symbol -> last accepted bar open time or trade id
        self._aggregators: dict[str, BarAggregator] = {}
        # Bound once: these run per bar and are the replay's hot path.
        self._mark = self.book.mark
        self._record_equity = self.equity.append
        self._record_bar = self.bars.append
        self._signal_of = self.signal_handler.decide  # bars are deduplicated by on_bar / on_trade

    def on_bar(self, bar: Bar) -> None:
        """One closed bar: `on_bars` of one."""
        self.on_bars((bar,))

    def on_bars(self, bars: Iterable[Bar]) -> None:
        """The bar-data path, bar after bar: a redelivered or late bar is counted and ignored;
        pending orders fill at the bar's open; the book is marked at its close; the strategy
        decides on the close, and a signal goes through both risk layers to the broker.

        One loop over many bars, with the handlers bound once, saving two method calls per bar
        (on_bar, then `_close`); the close step is `_close`, written out.
        """
        last_of = self._last
        venue = self.venue
        record_bar = self._record_bar
        record_equity = self._record_equity
        mark = self._mark
        decide = self._signal_of
        for bar in bars:
            symbol = bar.symbol
            last = last_of.get(symbol)
            if last is not None and bar.open_time <= last:
                self.ignored += 1
                continue
            last_of[symbol] = bar.open_time
            if venue.pending:
                for update in venue.on_bar(bar):
                    self._on_venue(update, bar.open_time)
            record_bar(bar)
            close, t = bar.close, bar.close_time
            record_equity(mark(symbol, close, t))
            signal = decide(bar)
            if signal is not None:
                self._on_market(symbol, close, t)  # see `_close`
                self._on_signal(signal, t)

    def on_trade(self, tick: Tick) -> None:
        """One trade: it may close a bar (`_close`), and it fills pending orders at its price."""
        symbol = tick.symbol
        last = self._last.get(symbol)
        if last is not None and tick.trade_id <= last:
            self.ignored += 1
            return
        self._last[symbol] = tick.trade_id
        self.trades_in += 1
        agg = self._aggregators.get(symbol)
        if agg is None:
            agg = self._aggregators[symbol] = BarAggregator(symbol, self.interval)
        bar = agg.on_trade(tick.price, tick.qty, tick.time)
        if bar is not None:
            self._close(bar)
        if self.venue.pending:
            for update in self.venue.on_price(symbol, tick.price, tick.time):
                self._on_venue(update, tick.time)

    def on_trades(self, ticks: Iterable[Tick]) -> None:
        for tick in ticks:
            self.on_trade(tick)

    def _close(self, bar: Bar) -> None:
        """A closed bar of the trade path: record it, mark the book at its close, evaluate the
        strategy (`on_bars` does the same, written out in its loop)."""
        self._record_bar(bar)
        symbol, close, t = bar.symbol, bar.close, bar.close_time
        self._record_equity(self._mark(symbol, close, t))
        signal = self._signal_of(bar)
        if signal is not None:
            # Risk reads the market only when it decides, and then the latest price is this close:
            # handing it every bar would cost a call per bar and leave the same state here.
            self._on_market(symbol, close, t)
            self._on_signal(signal, t)

    def _on_signal(self, signal: Signal, now: int) -> None:
        self.signals.append(signal)
        decision, intent = self.risk.on_signal(signal)
        if decision is not None:
            self.decisions.append(decision)
        if intent is None:
            return
        self.intents.append(intent)
        # The executor's async core, driven on this thread: the paper venue and the in-memory
        # store never wait (see `run_sync`).
        outcome = run_sync(self.executor.on_intent(intent, now))
        if outcome.decision is not None:
            self.decisions.append(outcome.decision)
        if outcome.reports:
            self.reports.extend(outcome.reports)

    def _on_venue(self, update: VenueOrder, now: int) -> None:
        """A paper fill: the executor books it and reports it."""
        self.reports.extend(run_sync(self._on_update(update, now)))

    def run(self, step: Callable[[Sequence[Any]], None], items: Sequence[Any],
            progress: Callable[[int], None] | None, progress_every: int,
            metrics: telemetry.Metrics | None) -> ReplayResult:
        """Drive `step` (on_bars or on_trades) over `items`, report to telemetry, build the result.

        The run allocates many small acyclic objects (events, decisions); cyclic GC passes over
        the growing heap (bars included) would find nothing, so they wait until the result is built.
        """
        with gc_paused():
            elapsed = _drive(step, items, progress, progress_every)
            self.flush_metrics(metrics or telemetry.metrics())
            return self.result(elapsed)

    def result(self, elapsed_s: float) -> ReplayResult:
        if not self.bars:
            raise ValueError("the replay closed no bar")
        book = self.book
        events = (self._accepted() + self.ignored + len(self.signals) + len(self.decisions) + len(self.intents)
                  + len(self.reports))
        symbol = self.bars[0].symbol
        return ReplayResult(
            symbol=symbol, strategy=self.strategy, params=dict(self.signal_handler.params), cash=self.cash,
            commission=self.commission, bars=self.bars, equity=self.equity, trades=list(book.closed_trades),
            signals=self.signals, decisions=self.decisions, intents=self.intents, reports=self.reports,
            open_position=book.position(symbol), final_equity=self.equity[-1],
            rejections=Counter(self.engine.rejections), reduced=self.engine.reduced,
            risk=self.engine.counters(), state_events=list(self.engine.state_events), events=events,
            ignored=self.ignored, elapsed_s=elapsed_s)


    def _accepted(self) -> int:
        """Market events consumed: trades on the trade path, else bars."""
        return self.trades_in or len(self.bars)

    def flush_metrics(self, metrics: telemetry.Metrics) -> None:
        """Hand the run's counts to OpenTelemetry in bulk (per-event calls would slow the hot path)."""
        base = {"hub": topology.MARKET_DATA.name, "consumer": "replay"}
        metrics.add_many([(telemetry.EVENTS, self._accepted(), {**base, "outcome": "ok"}),
                          (telemetry.EVENTS, self.ignored, {**base, "outcome": "duplicate"})])
        metrics.record_signals(self.signals)
        metrics.record_decisions(self.decisions)
        metrics.record_fills(self.reports)
        metrics.record_approvals(*self.engine.take_approvals())
        metrics.record_risk(self.engine.counters())


def _drive(step: Callable[[Sequence[Any]], None], items: Sequence[Any], progress: Callable[[int], None] | None,
           progress_every: int) -> float:
    """Feed `items` to `step` (all at once, or in chunks of `progress_every` between progress
    reports); returns the elapsed seconds. The one loop driver of every replay."""
    started = _time.perf_counter()
    if progress is None:
        step(items)
    else:
        for start in range(0, len(items), progress_every):
            chunk = items[start:start + progress_every]
            step(chunk)
            progress(len(chunk))
    return _time.perf_counter() - started


def run_replay(bars: Sequence[Bar], strategy: str = "sma_cross", params: Mapping[str, Any] | None = None,
               *, cash: float = 10_000.0, commission: float = 0.001, fee_mode: FeeMode = "quote",
               risk_config: RiskConfig | None = None, exchange_filters: ExchangeFilters | None = None,
               state_store: StateStore | None = None,
               progress: Callable[[int], None] | None = None, progress_every: int = 10_000,
               metrics: telemetry.Metrics | None = None) -> ReplayResult:
    """Replay closed bars of one symbol through the whole pipeline (both risk layers).

    Without `risk_config` the replay uses `RiskConfig.replay()` (backtest semantics, documented
    in docs/risk.md); pass `RiskConfig()` or an override of it to replay with the live limits.
    """
    if not bars:
        raise ValueError("no bars to replay")
    pipe = Pipeline(strategy, params, cash=cash, commission=commission, fee_mode=fee_mode,
                    risk_config=risk_config, exchange_filters=exchange_filters, state_store=state_store)
    return pipe.run(pipe.on_bars, bars, progress, progress_every, metrics)


def run_trade_replay(ticks: Sequence[Tick], strategy: str = "sma_cross", params: Mapping[str, Any] | None = None,
                     *, interval: str = "1m", cash: float = 10_000.0, commission: float = 0.001,
                     fee_mode: FeeMode = "quote", risk_config: RiskConfig | None = None,
                     exchange_filters: ExchangeFilters | None = None,
                     progress: Callable[[int], None] | None = None, progress_every: int = 10_000,
                     metrics: telemetry.Metrics | None = None) -> ReplayResult:
    """Replay trades: they build `interval` bars for the strategy, and orders fill at the next trade."""
    if not ticks:
        raise ValueError("no trades to replay")
    pipe = Pipeline(strategy, params, cash=cash, commission=commission, fee_mode=fee_mode,
                    risk_config=risk_config, exchange_filters=exchange_filters, interval=interval)
    return pipe.run(pipe.on_trades, ticks, progress, progress_every, metrics)
