"""Process-wide state of the Function App: handlers, publisher, dead-letter sink, batch processors.

Built lazily from app settings on first use (a cold start pays for it once, and importing the
app for indexing or tests connects to nothing) and replaceable through `configure`, so tests run
the real registered functions against in-memory adapters.

App settings read here (all slot-sticky except the strategy ones, see local.settings.json.example):
  EVENTHUB / EVENTHUB__fullyQualifiedNamespace   Event Hubs for triggers AND publisher
  DEADLETTER_STORAGE / DEADLETTER_STORAGE__blobServiceUri   dead-letter blobs
  MARKETFLOW_STRATEGY, MARKETFLOW_STRATEGY_PARAMS ("fast=10 slow=20")   the signals handler
  MARKETFLOW_RISK_*, MARKETFLOW_ACCOUNT_CASH   the risk handler (RiskHandler.from_settings)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

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
from shared.events import Kline, Signal
from shared.pipeline.risk import RiskHandler
from shared.pipeline.signals import SignalHandler
from shared.strategies import parse_params

log = logging.getLogger(__name__)

SERVICE_NAME = "marketflow-functions"
SIGNALS_CONSUMER = "signals"
RISK_CONSUMER = "risk"
STRATEGY_SETTING = "MARKETFLOW_STRATEGY"
STRATEGY_PARAMS_SETTING = "MARKETFLOW_STRATEGY_PARAMS"
DEFAULT_STRATEGY = "sma_cross"

_lock = threading.RLock()
_publisher: Publisher | None = None
_dead_letters: DeadLetterSink | None = None
_signal_handler: SignalHandler | None = None
_risk_handler: RiskHandler | None = None
_metrics: telemetry.Metrics | None = None
_processors: dict[str, BatchProcessor[Any]] = {}


def configure(*, publisher: Publisher | None = None, dead_letters: DeadLetterSink | None = None,
              signal_handler: SignalHandler | None = None, risk_handler: RiskHandler | None = None,
              metrics: telemetry.Metrics | None = None) -> None:
    """Replace some singletons (the rest stay lazy). Processors are rebuilt on next use."""
    global _publisher, _dead_letters, _signal_handler, _risk_handler, _metrics
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
        _processors.clear()


def reset() -> None:
    """Forget every singleton (tests); the next invocation builds them from settings again."""
    global _publisher, _dead_letters, _signal_handler, _risk_handler, _metrics
    with _lock:
        _publisher = _dead_letters = _signal_handler = _risk_handler = _metrics = None
        _processors.clear()


def signal_handler_from_settings(environ: Mapping[str, str] | None = None) -> SignalHandler:
    """The strategy and its parameters from MARKETFLOW_STRATEGY / MARKETFLOW_STRATEGY_PARAMS."""
    env = os.environ if environ is None else environ
    name = env.get(STRATEGY_SETTING, "").strip() or DEFAULT_STRATEGY
    pairs = env.get(STRATEGY_PARAMS_SETTING, "").replace(",", " ").split()
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
    global _risk_handler
    with _lock:
        if _risk_handler is None:
            _risk_handler = RiskHandler.from_settings()
        return _risk_handler


def metrics() -> telemetry.Metrics:
    with _lock:
        return _metrics if _metrics is not None else telemetry.setup(service_name=SERVICE_NAME).metrics


def _signals_step(kline: Kline) -> StepResult:
    signal = signal_handler().on_kline(kline)
    return StepResult(publish=(signal,) if signal is not None else ())


def _record_approvals(m: telemetry.Metrics) -> None:
    m.record_approvals(*risk_handler().engine.take_approvals())


def _risk_step(signal: Signal) -> StepResult:
    decision, intent = risk_handler().on_signal(signal)
    return StepResult(publish=(intent,) if intent is not None else (),
                      observe=(decision,) if decision is not None else ())


def signals_processor() -> BatchProcessor[Kline]:
    """market-data klines -> SignalHandler.on_kline -> hub `signals`."""
    with _lock:
        proc = _processors.get(SIGNALS_CONSUMER)
        if proc is None:
            proc = _processors[SIGNALS_CONSUMER] = BatchProcessor(
                hub=topology.MARKET_DATA.name, consumer=SIGNALS_CONSUMER, event_type=Kline,
                step=_signals_step, publish_to=topology.SIGNALS.name, publisher=publisher(),
                dead_letters=dead_letters(), metrics=metrics())
        return proc


def risk_processor() -> BatchProcessor[Signal]:
    """signals -> RiskHandler.on_signal -> hub `orders`; decisions go to logs and metrics only."""
    with _lock:
        proc = _processors.get(RISK_CONSUMER)
        if proc is None:
            proc = _processors[RISK_CONSUMER] = BatchProcessor(
                hub=topology.SIGNALS.name, consumer=RISK_CONSUMER, event_type=Signal, step=_risk_step,
                publish_to=topology.ORDERS.name, publisher=publisher(), dead_letters=dead_letters(),
                metrics=metrics(), after_batch=_record_approvals)
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


def to_delivery(event: func.EventHubEvent) -> Delivery:
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
                    offset=None if offset is None else str(offset), enqueued_time=enqueued_ms)


def run(processor: BatchProcessor[Any], events: Sequence[func.EventHubEvent]) -> BatchOutcome:
    """What every trigger does: hand the batch to its processor. Raises only to get a retry."""
    return processor.process([to_delivery(e) for e in events])
