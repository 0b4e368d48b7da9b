"""The executor's two consumers, as plain steps over the shared handlers.

- `orders` (consumer group `executor`): each OrderIntent goes to the shared executor core (intent
  store first, last look, stored as SUBMITTED, then sent; see `shared.execution.executor`); its
  reports, if any, are published to `executions` (the paper venue reports a market order once,
  when it fills).
- `market-data` (consumer group `executor`): prices feed the risk engine's market state (price
  band, staleness) and, on the paper venue, fill the working orders at the next bar's open.

Tracing: each order's handling span is remembered (bounded, in memory) by intent id, so the fill
the paper venue reports while a later kline is handled continues the order's trace, not the
kline's (`StepResult.trace_parents`); after a restart a working order's fill falls back to the
kline's trace.

The executor core books the fills of its own orders into the position book (the exact account
layer 2 checks) and saves the book with the order's record in the intent store. The book is
loaded from that store at start (`store`: SQLite under a state dir, or Table storage; without
one, an in-memory store that does not survive the process).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from shared import topology
from shared.adapters.deadletter import DeadLetterSink
from shared.adapters.processing import BatchProcessor, Delivery, StepResult, is_replay
from shared.adapters.publisher import Publisher
from shared.events import ExecutionReport, Kline, OrderIntent
from shared.execution import (
    Executor,
    IntentStore,
    MemoryIntentStore,
    PaperVenue,
    Reconciled,
    restore_book,
    run_sync,
)
from shared.execution.paper import balances_of
from shared.market import Bar
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine, StateStore
from shared.risk.checks import daily_loss_used
from shared.risk.reasons import Reason

from .logs import correlation

if TYPE_CHECKING:
    from .metrics import ExecutorMetrics

CONSUMER = "executor"
TRADES_WINDOW = 1_000  # closed round trips the service's book keeps in memory
ORDER_TRACES = 10_000  # span contexts of the newest orders kept to continue their fills' traces
T = TypeVar("T")
# Runs one executor call to its end from a batch's worker thread: `run_sync` for the paper venue
# (it never waits), or a hop onto the event loop that owns a network venue's session.
Runner = Callable[[Coroutine[Any, Any, T]], T]


class ExecutorService:
    """One account's executor: risk engine, venue, position book and the two hub consumers."""

    def __init__(self, *, publisher: Publisher, dead_letters: DeadLetterSink, cash: float,
                 commission: float = 0.001, risk_config: RiskConfig | None = None,
                 clock: Callable[[OrderIntent], int] | None = None, metrics: ExecutorMetrics | None = None,
                 store: IntentStore | None = None, venue: Any | None = None, run: Runner[Any] = run_sync,
                 restore: bool = True, state_store: StateStore | None = None) -> None:
        # Wall-clock ms in production (signal age and staleness are about now); a replay or a test
        # passes an event-time clock so the decisions are deterministic.
        self._clock = clock or (lambda _intent: int(time.time() * 1000))
        self.store: IntentStore = store if store is not None else MemoryIntentStore()
        self._cash, self._commission = cash, commission
        # The book as last saved with its fills (a fresh one with `cash` before the first fill);
        # the paper venue, which keeps nothing across restarts, starts from the same balances. A
        # network store (Table storage) is read by `recover()` on the runtime's loop instead, once
        # the lease is held (`restore=False`): until then the book is a fresh one with `cash`.
        fresh = PositionBook(cash=cash, trades_window=TRADES_WINDOW)
        self.book = run_sync(restore_book(self.store, lambda: fresh)) if restore else fresh
        # The trading state (kill switch, locks) in the document every Function instance reads
        # (`state_store`, from STATE_STORAGE): a halt from `marketflow trading-state` or the
        # `trading_state` endpoint reaches this last look within state_refresh_s.
        self.engine = RiskEngine(risk_config or RiskConfig(), store=state_store)
        # The paper venue by default; a network venue (Binance) is handed in, its calls `run` on
        # the loop that owns its session.
        self.paper = venue is None
        self.broker: Any = venue if venue is not None else PaperVenue(commission=commission,
                                                                      balances=balances_of(self.book))
        self._run: Runner[Any] = run
        self.executor = Executor(self.broker, self.engine, self.book, self.store)
        self.orders = BatchProcessor(
            hub=topology.ORDERS.name, consumer=CONSUMER, event_type=OrderIntent,
            step_with_delivery=self._on_intent,
            publish_to=topology.EXECUTIONS.name, publisher=publisher, dead_letters=dead_letters,
            after_batch=lambda m: m.record_approvals(*self.engine.take_approvals()))
        self.market = BatchProcessor(
            hub=topology.MARKET_DATA.name, consumer=CONSUMER, event_type=Kline, step=self._on_kline,
            publish_to=topology.EXECUTIONS.name, publisher=publisher, dead_letters=dead_letters)
        self._last_open: dict[str, int] = {}
        self._order_traces: OrderedDict[str, SpanContext] = OrderedDict()  # intent id -> its span
        self.metrics = metrics

    def _on_intent(self, intent: OrderIntent, delivery: Delivery) -> StepResult:
        started = time.perf_counter()
        # A replayed intent (the `replay` property every stage carries on) is checked in event
        # time, as risk checks its signal; a live one on the service's clock (wall time).
        now = intent.event_time if is_replay(delivery) else self._clock(intent)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            self._order_traces[intent.event_id] = span
            while len(self._order_traces) > ORDER_TRACES:
                self._order_traces.popitem(last=False)
        with correlation(intent.correlation_id, intent.event_id):
            # The paper venue and a local store never wait: the async core runs on this thread.
            outcome = self._run(self.executor.on_intent(intent, now))
        if self.metrics is not None and outcome.reports:
            self.metrics.order_latency.observe(time.perf_counter() - started)
        observe = (outcome.decision,) if outcome.decision is not None else ()
        return StepResult(publish=outcome.reports, observe=observe)

    def _on_kline(self, kline: Kline) -> StepResult:
        if not kline.is_closed:
            return StepResult()
        last = self._last_open.get(kline.symbol)
        if last is not None and kline.open_time <= last:
            return StepResult()  # redelivered: already priced and filled against
        self._last_open[kline.symbol] = kline.open_time
        bar = Bar.from_kline(kline)
        reports: list[ExecutionReport] = []
        if self.paper and self.broker.pending:
            for update in self.broker.on_bar(bar):
                reports.extend(self._run(self.executor.on_order_update(update, bar.open_time)))
        self.book.mark(bar.symbol, bar.close, bar.close_time)
        self.engine.on_market(bar.symbol, bar.close, bar.close_time)
        parents = {r.event_id: ctx for r in reports if (ctx := self._order_traces.get(r.intent_id)) is not None}
        return StepResult(publish=tuple(reports), trace_parents=parents)

    async def recover(self, now: int | None = None) -> Reconciled:
        """Take over the account: reload the book from the store (another replica may have written
        it since this one started), start the paper venue from it, and reconcile the store's open
        orders and the balances with the venue. The runtime awaits it once the lease is held,
        before consuming (on the loop that owns a network venue's session)."""
        now = int(time.time() * 1000) if now is None else now
        book = await restore_book(self.store, lambda: PositionBook(cash=self._cash, trades_window=TRADES_WINDOW))
        self.book = self.executor.book = book
        if self.paper:
            self.broker = self.executor.venue = PaperVenue(commission=self._commission, balances=balances_of(book))
        self.executor.open.clear()
        self.executor.in_flight.clear()
        return await self.executor.reconcile(now)

    def run_on(self, run: Runner[Any]) -> None:
        """Run the executor's calls with `run` (e.g. on the loop that owns a network store's session)."""
        self._run = run

    def use_venue(self, venue: Any, run: Runner[Any]) -> None:
        """Trade on a network venue from now on (connected once the lease is held), its calls
        `run` on the loop that owns its session."""
        self.paper = False
        self.broker = self.executor.venue = venue
        self._run = run

    # -- readiness and state for the probes and /metrics ----------------------------------------
    def not_banned(self) -> bool:
        """No exchange ban (HTTP 418/429, -1003) holds trading HALTED right now, and the venue
        itself is not inside a ban it was told of."""
        if getattr(self.broker, "banned", False):
            return False
        now = int(time.time() * 1000)
        return not any(lk.source == Reason.EXCHANGE_BAN and (lk.until is None or lk.until > now)
                       for lk in self.engine.states.record.locks)

    def time_synced(self) -> bool:
        """The venue's clock offset has been synced (the paper venue keeps no clock: always)."""
        return bool(getattr(self.broker, "time_synced", True))

    def export_state(self) -> None:
        if self.metrics is not None:
            self.metrics.trading_state.state(self.engine.trading_state.value)
            self.metrics.daily_loss_used.set(daily_loss_used(self.book.snapshot_account(), self.engine.config))
