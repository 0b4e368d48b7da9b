"""Process-wide state of the Function App: handlers, publisher, dead-letter sink, batch processors.

Built lazily from app settings on first use (a cold start pays for it once, and importing the
app for indexing or tests connects to nothing) and replaceable through `configure`, so tests run
the real registered functions against in-memory adapters.

App settings read here (all slot-sticky except the strategy ones, see local.settings.json.example):
  EVENTHUB / EVENTHUB__fullyQualifiedNamespace   Event Hubs for triggers AND publisher
  DEADLETTER_STORAGE / DEADLETTER_STORAGE__blobServiceUri   dead-letter blobs
  STATE_STORAGE / STATE_STORAGE__blobServiceUri (or MARKETFLOW_STATE_DB locally)   the shared
      documents: account snapshot, trading state (shared.adapters.stores)
  MARKETFLOW_STRATEGY, MARKETFLOW_STRATEGY_PARAMS ("fast=10 slow=20")   the signals handler
  MARKETFLOW_RISK_*   the risk handler; it reads the account positions writes (positions reads
      the daily loss limits too, for its daily_loss_used_pct gauge)
  MARKETFLOW_ACCOUNT_CASH   the paper account's opening capital, used by positions only when the
      store holds no account yet
  MARKETFLOW_INTERVAL   the kline interval the strategies and the marks use (default 1m)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any, Generic, TypeVar

import azure.functions as func

from shared import telemetry, topology
from shared.adapters import (
    BatchOutcome,
    BatchProcessor,
    BlobDeadLetterSink,
    DeadLetterSink,
    Delivery,
    EventHubPublisher,
    Publisher,
    StepResult,
)
from shared.adapters.account import ACCOUNT_CASH_SETTING, AccountStore, CachedAccount, StoredPositions, wall_ms
from shared.adapters.documents import DocumentStore
from shared.adapters.partition_state import PartitionStates
from shared.adapters.processing import is_replay
from shared.adapters.stores import documents_from_settings
from shared.adapters.trading_state import DocumentStateStore
from shared.events import ExecutionReport, Kline, Signal
from shared.pipeline.risk import RiskHandler
from shared.pipeline.signals import SignalHandler
from shared.risk import RiskConfig, RiskEngine
from shared.risk.checks import daily_loss_used
from shared.strategies import parse_params

log = logging.getLogger(__name__)

SERVICE_NAME = "marketflow-functions"
SIGNALS_CONSUMER = "signals"
RISK_CONSUMER = "risk"
POSITIONS_CONSUMER = "positions"
POSITIONS_MARKS = "positions_marks"  # the positions consumer of market-data (its processor key)
STRATEGY_SETTING = "MARKETFLOW_STRATEGY"
STRATEGY_PARAMS_SETTING = "MARKETFLOW_STRATEGY_PARAMS"
INTERVAL_SETTING = "MARKETFLOW_INTERVAL"
DEFAULT_STRATEGY = "sma_cross"
DEFAULT_INTERVAL = "1m"

_lock = threading.RLock()
_publisher: Publisher | None = None
_dead_letters: DeadLetterSink | None = None
_signal_handler: SignalHandler | None = None
_risk_handler: RiskHandler | None = None
_metrics: telemetry.Metrics | None = None
_documents: DocumentStore | None = None
_documents_loaded = False
_environ: Mapping[str, str] | None = None
_processors: dict[str, BatchProcessor[Any]] = {}


def configure(*, publisher: Publisher | None = None, dead_letters: DeadLetterSink | None = None,
              signal_handler: SignalHandler | None = None, risk_handler: RiskHandler | None = None,
              metrics: telemetry.Metrics | None = None, documents: DocumentStore | None = None,
              environ: Mapping[str, str] | None = None) -> None:
    """Replace some singletons (the rest stay lazy). Processors are rebuilt on next use.
    `environ` replaces os.environ for everything built from settings afterwards."""
    global _publisher, _dead_letters, _signal_handler, _risk_handler, _metrics, _documents, _documents_loaded
    global _environ
    with _lock:
        if publisher is not None:
            _publisher = publisher
        if dead_letters is not None:
            _dead_letters = dead_letters
        if signal_handler is not None:
            _signal_handler = signal_handler
        if risk_handler is not None:
            _risk_handler = risk_handler
        if metrics is not None:
            _metrics = metrics
        if documents is not None:
            _documents, _documents_loaded = documents, True
        if environ is not None:
            _environ = environ
        _processors.clear()


def reset() -> None:
    """Forget every singleton (tests); the next invocation builds them from settings again."""
    global _publisher, _dead_letters, _signal_handler, _risk_handler, _metrics, _documents, _documents_loaded
    global _environ
    with _lock:
        _publisher = _dead_letters = _signal_handler = _risk_handler = _metrics = _documents = None
        _documents_loaded = False
        _environ = None
        _processors.clear()


def env() -> Mapping[str, str]:
    return os.environ if _environ is None else _environ


def interval() -> str:
    return env().get(INTERVAL_SETTING, "").strip() or DEFAULT_INTERVAL


def documents() -> DocumentStore | None:
    """The shared document store (account, trading state), or None when none is configured."""
    global _documents, _documents_loaded
    with _lock:
        if not _documents_loaded:
            _documents = documents_from_settings(env())
            _documents_loaded = True
            if _documents is None:
                log.error("no shared state store configured (STATE_STORAGE or MARKETFLOW_STATE_DB): risk "
                          "refuses every signal and positions cannot run")
        return _documents


def risk_handler_from_settings() -> RiskHandler:
    """Layer 1 over the shared stores: the trading state every engine shares and the account
    snapshot positions writes (re-read every state_refresh_s, and until the fill of each order it
    approved is booked, at most account_wait_s). Without a store: refuses all."""
    docs = documents()
    if docs is None:
        return RiskHandler.from_settings()
    config = RiskConfig()
    engine = RiskEngine(config, store=DocumentStateStore(docs))
    account = CachedAccount(AccountStore(docs), refresh_ms=round(config.state_refresh_s * 1000),
                            wait_ms=round(config.account_wait_s * 1000))
    return RiskHandler(engine, account, on_approved=account.expect)


def stored_positions() -> StoredPositions:
    """One positions transaction object per processor (each loads the account every batch)."""
    docs = documents()
    if docs is None:
        from shared.adapters.azure import ConfigurationError

        raise ConfigurationError("positions needs a shared state store: set STATE_STORAGE "
                                 "(or STATE_STORAGE__blobServiceUri), or MARKETFLOW_STATE_DB locally")
    cash = env().get(ACCOUNT_CASH_SETTING, "").strip()
    return StoredPositions(AccountStore(docs), interval=interval(), opening_cash=float(cash) if cash else None)


def signal_handler_from_settings(environ: Mapping[str, str] | None = None) -> SignalHandler:
    """The strategy and its parameters from MARKETFLOW_STRATEGY / MARKETFLOW_STRATEGY_PARAMS."""
    settings = env() if environ is None else environ
    name = settings.get(STRATEGY_SETTING, "").strip() or DEFAULT_STRATEGY
    pairs = settings.get(STRATEGY_PARAMS_SETTING, "").replace(",", " ").split()
    return SignalHandler(name, parse_params(pairs))


def publisher() -> Publisher:
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = EventHubPublisher.from_settings(topology.EVENTHUB_CONNECTION_SETTING)
        return _publisher


def dead_letters() -> DeadLetterSink:
    global _dead_letters
    with _lock:
        if _dead_letters is None:
            _dead_letters = BlobDeadLetterSink.from_settings()
        return _dead_letters


def signal_handler() -> SignalHandler:
    global _signal_handler
    with _lock:
        if _signal_handler is None:
            _signal_handler = signal_handler_from_settings()
        return _signal_handler


def risk_handler() -> RiskHandler:
    """The handler `configure` installed (tests), else a new one from settings; the `risk`
    Function itself keeps one per partition (RiskConsumer)."""
    with _lock:
        configured = _risk_handler
    return configured if configured is not None else risk_handler_from_settings()


def metrics() -> telemetry.Metrics:
    with _lock:
        return _metrics if _metrics is not None else telemetry.setup(service_name=SERVICE_NAME).metrics


H = TypeVar("H")


class PerPartition(Generic[H]):
    """One handler per partition (`factory` builds each), or `shared`, one for every partition
    (tests); `install` puts a restored (or, with None, a cold) handler in place after a takeover."""

    def __init__(self, factory: Callable[[], H], shared: H | None, restore: Callable[[H, dict[str, Any]], None]
                 ) -> None:
        self.factory = factory
        self.shared = shared
        self.handlers: dict[str | None, H] = {}
        self._restore = restore

    def get(self, partition: str | None) -> H:
        if self.shared is not None:
            return self.shared
        handler = self.handlers.get(partition)
        if handler is None:
            handler = self.handlers[partition] = self.factory()
        return handler

    def install(self, partition: str, state: dict[str, Any] | None) -> None:
        handler = self.shared if self.shared is not None else self.factory()
        if state is not None:
            self._restore(handler, state)
        if self.shared is None:
            self.handlers[partition] = handler

    def all(self) -> list[H]:
        return [self.shared] if self.shared is not None else list(self.handlers.values())


class SignalsConsumer:
    """The `signals` consumer of one process: a SignalHandler per partition, whose state (with the
    dedup window and the last sequence number) is saved after each batch and restored when
    another instance processed the partition since (shared.adapters.partition_state).

    `handler` (tests) is one handler for every partition instead; `documents` None keeps the
    state in memory only (nothing survives a takeover: the new owner starts cold and its
    strategies emit nothing until their indicators are warm again).
    """

    def __init__(self, *, publisher: Publisher, dead_letters: DeadLetterSink, metrics: telemetry.Metrics,
                 documents: DocumentStore | None, interval: str, factory: Callable[[], SignalHandler],
                 handler: SignalHandler | None = None) -> None:
        self.partitions = PerPartition(factory, handler, lambda h, state: h.restore(state))
        states = None if documents is None else PartitionStates(
            documents, topology.MARKET_DATA.name, SIGNALS_CONSUMER, snapshot=lambda p: self.handler(p).snapshot(),
            restore=self.partitions.install)
        self.processor: BatchProcessor[Kline] = BatchProcessor(
            hub=topology.MARKET_DATA.name, consumer=SIGNALS_CONSUMER, event_type=Kline, step_with_delivery=self._step,
            publish_to=topology.SIGNALS.name, publisher=publisher, dead_letters=dead_letters, metrics=metrics,
            skip_other_types=True, interval=interval, partition_states=states)

    def handler(self, partition: str | None) -> SignalHandler:
        return self.partitions.get(partition)

    def _step(self, kline: Kline, delivery: Delivery) -> StepResult:
        signal = self.handler(delivery.partition_id).on_kline(kline)
        return StepResult(publish=(signal,) if signal is not None else ())


class RiskConsumer:
    """The `risk` consumer of one process: a RiskHandler per partition (its engine's decided ids,
    rate windows and last prices, `RiskEngine.snapshot`), saved after each batch with the dedup
    window and restored when another instance processed the partition since, as for `signals`.
    A symbol's signals all land on one partition, so per-symbol checks see every signal of their
    symbol whoever owns it; the account and the trading state are the shared documents.

    `handler` (tests) is one handler for every partition instead; `documents` None keeps the
    state in memory only.
    """

    def __init__(self, *, publisher: Publisher, dead_letters: DeadLetterSink, metrics: telemetry.Metrics,
                 documents: DocumentStore | None, factory: Callable[[], RiskHandler],
                 handler: RiskHandler | None = None) -> None:
        self.partitions = PerPartition(factory, handler, lambda h, state: h.engine.restore(state))
        states = None if documents is None else PartitionStates(
            documents, topology.SIGNALS.name, RISK_CONSUMER, snapshot=lambda p: self.handler(p).engine.snapshot(),
            restore=self.partitions.install)
        self.processor: BatchProcessor[Signal] = BatchProcessor(
            hub=topology.SIGNALS.name, consumer=RISK_CONSUMER, event_type=Signal, step_with_delivery=self._step,
            publish_to=topology.ORDERS.name, publisher=publisher, dead_letters=dead_letters, metrics=metrics,
            after_batch=self._record_approvals, partition_states=states)

    def handler(self, partition: str | None) -> RiskHandler:
        return self.partitions.get(partition)

    def _record_approvals(self, m: telemetry.Metrics) -> None:
        for handler in self.partitions.all():
            m.record_approvals(*handler.engine.take_approvals())

    def _step(self, signal: Signal, delivery: Delivery) -> StepResult:
        # A replayed signal is checked in event time (the engine's market clock); a live one now.
        decision, intent = self.handler(delivery.partition_id).on_signal(
            signal, None if is_replay(delivery) else wall_ms())
        return StepResult(publish=(intent,) if intent is not None else (),
                          observe=(decision,) if decision is not None else ())


def signals_processor() -> BatchProcessor[Kline]:
    """market-data klines of the configured interval -> SignalHandler.on_kline -> hub `signals`."""
    with _lock:
        proc = _processors.get(SIGNALS_CONSUMER)
        if proc is None:
            consumer = SignalsConsumer(publisher=publisher(), dead_letters=dead_letters(), metrics=metrics(),
                                       documents=documents(), interval=interval(),
                                       factory=signal_handler_from_settings, handler=_signal_handler)
            proc = _processors[SIGNALS_CONSUMER] = consumer.processor
        return proc


def risk_processor() -> BatchProcessor[Signal]:
    """signals -> RiskHandler.on_signal (one per partition) -> hub `orders`; decisions go to logs
    and metrics only."""
    with _lock:
        proc = _processors.get(RISK_CONSUMER)
        if proc is None:
            consumer = RiskConsumer(publisher=publisher(), dead_letters=dead_letters(), metrics=metrics(),
                                    documents=documents(), factory=risk_handler_from_settings, handler=_risk_handler)
            proc = _processors[RISK_CONSUMER] = consumer.processor
        return proc


def account_recorder(book: StoredPositions) -> Callable[[], None]:
    """`book.commit`, then the account gauges (telemetry.GAUGES) from what was written: equity,
    daily P&L, drawdown, exposure, and the share of the daily loss limit used (the risk settings
    risk reads; unreadable ones skip that gauge, never the booking)."""
    try:
        config: RiskConfig | None = RiskConfig()
    except ValueError as exc:  # RiskConfigError, pydantic's ValidationError
        log.error("positions: risk settings unreadable, no daily loss gauge: %s", exc)
        config = None

    def commit() -> None:
        book.commit()
        account = book.account()
        metrics().record_account(account, None if config is None else daily_loss_used(account, config))

    return commit


def positions_processor() -> BatchProcessor[ExecutionReport]:
    """executions -> the account book -> the account document risk reads (no hub output)."""
    with _lock:
        proc = _processors.get(POSITIONS_CONSUMER)
        if proc is None:
            book = stored_positions()

            def step(report: ExecutionReport) -> StepResult:
                book.on_report(report)
                return StepResult(observe=(report,))  # fills counted by the FILLS metric

            proc = _processors[POSITIONS_CONSUMER] = BatchProcessor(
                hub=topology.EXECUTIONS.name, consumer=POSITIONS_CONSUMER, event_type=ExecutionReport, step=step,
                publish_to=None, publisher=publisher(), dead_letters=dead_letters(), metrics=metrics(),
                begin=book.begin, commit=account_recorder(book), cache_outputs=False)
        return proc


def positions_marks_processor() -> BatchProcessor[Kline]:
    """market-data closed klines -> marks of the account book (equity, day start, peak)."""
    with _lock:
        proc = _processors.get(POSITIONS_MARKS)
        if proc is None:
            book = stored_positions()

            def step(kline: Kline) -> StepResult:
                book.on_kline(kline)
                return StepResult()

            proc = _processors[POSITIONS_MARKS] = BatchProcessor(
                hub=topology.MARKET_DATA.name, consumer=POSITIONS_CONSUMER, event_type=Kline, step=step,
                publish_to=None, publisher=publisher(), dead_letters=dead_letters(), metrics=metrics(),
                begin=book.begin, commit=account_recorder(book), cache_outputs=False, skip_other_types=True,
                interval=interval(), name=POSITIONS_MARKS)
        return proc


def _partition_id(event: func.EventHubEvent) -> str | None:
    """PartitionContext.PartitionId from the trigger metadata, when the host supplied it."""
    try:
        context = (event.metadata or {}).get("PartitionContext")
    except Exception:  # metadata is best effort; the body and sequence number are what matter
        return None
    if isinstance(context, Mapping):
        pid = context.get("PartitionId")
        return None if pid is None else str(pid)
    return None


def properties_array(events: Sequence[func.EventHubEvent]) -> list[Mapping[str, Any]]:
    """Each event's application properties. In a cardinality=many batch the host puts them in the
    trigger metadata's `PropertiesArray` (one dict per event; every event of the batch points at
    the same metadata, so it is read once), for a single event in `Properties`."""
    if not events:
        return []
    try:
        meta = events[0].metadata or {}
    except Exception:  # metadata is best effort, as above
        return [{} for _ in events]
    array = meta.get("PropertiesArray")
    if isinstance(array, list) and len(array) == len(events):
        return [dict(p) if isinstance(p, Mapping) else {} for p in array]
    single = meta.get("Properties")
    if len(events) == 1 and isinstance(single, Mapping):
        return [dict(single)]
    return [{} for _ in events]


def to_delivery(event: func.EventHubEvent, properties: Mapping[str, Any] | None = None) -> Delivery:
    """The transport-neutral form of one trigger event (body bytes untouched)."""
    enqueued = event.enqueued_time
    enqueued_ms: int | None = None
    if enqueued is not None:
        if enqueued.tzinfo is None:
            enqueued = enqueued.replace(tzinfo=UTC)  # the host reports UTC
        enqueued_ms = int(enqueued.timestamp() * 1000)
    offset = event.offset
    return Delivery(body=event.get_body(), partition_id=_partition_id(event),
                    partition_key=event.partition_key, sequence_number=event.sequence_number,
                    offset=None if offset is None else str(offset), enqueued_time=enqueued_ms,
                    properties=properties if properties is not None else {})


def run(processor: BatchProcessor[Any], events: Sequence[func.EventHubEvent]) -> BatchOutcome:
    """What every trigger does: hand the batch to its processor. Raises only to get a retry."""
    props = properties_array(events)
    return processor.process([to_delivery(e, p) for e, p in zip(events, props, strict=True)])
