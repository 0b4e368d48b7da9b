"""The executor's two consumers, as plain steps over the shared handlers.

- `orders` (consumer group `executor`): each OrderIntent gets the last look and, if approved, is
  stored and sent; the venue's immediate report, if it gives one, is published to `executions`
  (the paper venue reports a market order once, when it fills).
- `market-data` (consumer group `executor`): prices feed the risk engine's market state (price
  band, staleness) and, on the paper venue, fill the working orders at the next bar's open.

Fills of its own orders update the executor's position book, the exact account layer 2 checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared import topology
from shared.adapters.deadletter import DeadLetterSink
from shared.adapters.processing import BatchProcessor, StepResult
from shared.adapters.publisher import Publisher
from shared.events import ExecutionReport, Kline, OrderIntent
from shared.execution import Executor, PaperBroker
from shared.market import Bar
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine
from shared.risk.reasons import Reason

from .logs import correlation

if TYPE_CHECKING:
    from .metrics import ExecutorMetrics

CONSUMER = "executor"


class ExecutorService:
    """One account's executor: risk engine, venue, position book and the two hub consumers."""

    def __init__(self, *, publisher: Publisher, dead_letters: DeadLetterSink, cash: float,
                 commission: float = 0.001, risk_config: RiskConfig | None = None,
                 clock: Callable[[OrderIntent], int] | None = None, metrics: ExecutorMetrics | None = None) -> None:
        # Wall-clock ms in production (signal age and staleness are about now); a replay or a test
        # passes an event-time clock so the decisions are deterministic.
        self._clock = clock or (lambda _intent: int(time.time() * 1000))
        self.book = PositionBook(cash=cash)
        self.engine = RiskEngine(risk_config or RiskConfig())
        self.broker = PaperBroker(commission=commission)
        self.executor = Executor(self.broker, self.engine, self.book.snapshot_account)
        self.orders = BatchProcessor(
            hub=topology.ORDERS.name, consumer=CONSUMER, event_type=OrderIntent, step=self._on_intent,
            publish_to=topology.EXECUTIONS.name, publisher=publisher, dead_letters=dead_letters,
            after_batch=lambda m: m.record_approvals(*self.engine.take_approvals()))
        self.market = BatchProcessor(
            hub=topology.MARKET_DATA.name, consumer=CONSUMER, event_type=Kline, step=self._on_kline,
            publish_to=topology.EXECUTIONS.name, publisher=publisher, dead_letters=dead_letters)
        self._last_open: dict[str, int] = {}
        self.metrics = metrics

    def _on_intent(self, intent: OrderIntent) -> StepResult:
        started = time.perf_counter()
        with correlation(intent.correlation_id, intent.event_id):
            decision, report = self.executor.on_intent(intent, self._clock(intent))
        if self.metrics is not None and report is not None:
            self.metrics.order_latency.observe(time.perf_counter() - started)
        observe = (decision,) if decision is not None else ()
        return StepResult(publish=self._book((report,) if report is not None else ()), observe=observe)

    def _on_kline(self, kline: Kline) -> StepResult:
        if not kline.is_closed:
            return StepResult()
        last = self._last_open.get(kline.symbol)
        if last is not None and kline.open_time <= last:
            return StepResult()  # redelivered: already priced and filled against
        self._last_open[kline.symbol] = kline.open_time
        bar = Bar.from_kline(kline)
        reports = self.broker.on_bar(bar) if self.broker.pending else []
        self.book.mark(bar.symbol, bar.close, bar.close_time)
        self.engine.on_market(bar.symbol, bar.close, bar.close_time)
        return StepResult(publish=self._book(tuple(reports)))

    def _book(self, reports: tuple[ExecutionReport, ...]) -> tuple[ExecutionReport, ...]:
        for report in reports:
            self.executor.on_report(report)
            if report.fills:  # whatever the status: a canceled order may have filled in part
                self.book.apply(report)
        return reports

    # -- readiness and state for the probes and /metrics ----------------------------------------
    def not_banned(self) -> bool:
        """No exchange ban (HTTP 418/429, -1003) holds trading HALTED right now."""
        now = int(time.time() * 1000)
        return not any(lk.source == Reason.EXCHANGE_BAN and (lk.until is None or lk.until > now)
                       for lk in self.engine.states.record.locks)

    def time_synced(self) -> bool:
        """The paper venue keeps no clock of its own: always in sync."""
        return True

    def export_state(self) -> None:
        if self.metrics is not None:
            self.metrics.trading_state.state(self.engine.trading_state.value)
