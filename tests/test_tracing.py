"""One trace from a kline to its fill: W3C trace context in the events' properties, continued by
every consumer, read back from an in-memory span exporter.

The decision is followed through the real parts: the ingestor's PublisherSink publishes the
klines; the real registered `signals`, `risk` and `positions` functions get host-shaped batches
(the worker's converter, per-event properties in `PropertiesArray`); the AKS executor's
ExecutorService (paper venue) gets its orders as azure-eventhub `EventData` through the runtime's
own `to_delivery` (property keys and values as bytes, as the SDK hands them over).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from azure.eventhub import EventData
from eventhub_host import host_batch, trigger, wire_properties
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from aks_executor.app import to_delivery
from aks_executor.service import ExecutorService
from aks_ingestor.sinks import PublisherSink
from functions import runtime
from shared import telemetry, topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher
from shared.adapters.binance.stream_messages import Item
from shared.adapters.binance.streams import StreamKey, StreamKind
from shared.adapters.documents import InMemoryDocumentStore
from shared.adapters.tracing import TRACEPARENT, TRACESTATE, extract, incoming, properties_of, without_trace
from shared.events import Event, ExecutionReport, Kline, OrderIntent, OrderStatus, Signal, encode
from shared.market import Bar
from shared.risk import RiskConfig

ENV = {"MARKETFLOW_ACCOUNT_CASH": "10000", "MARKETFLOW_STRATEGY": "sma_cross",
       "MARKETFLOW_STRATEGY_PARAMS": "fast=3 slow=8"}
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """A fresh local telemetry setup whose tracer provider also writes to an in-memory exporter."""
    telemetry.reset_for_tests()
    exporter = InMemorySpanExporter()
    telemetry.setup(service_name="mf-trace-test", environ={}).tracer_provider.add_span_processor(
        SimpleSpanProcessor(exporter))
    yield exporter
    telemetry.reset_for_tests()


class Hubs:
    """In-memory hubs: what each producer published, with the properties it would carry."""

    def __init__(self) -> None:
        self.publisher = InMemoryPublisher()

    def sent(self, hub: str) -> list[tuple[Event, dict[str, str]]]:
        return list(zip(self.publisher.events(hub), self.publisher.properties.get(hub, []), strict=True))

    def batch(self, pairs: list[tuple[Event, Mapping[str, str]]], first_sequence: int = 0) -> list[Any]:
        """A host batch of `pairs`, each with the publisher's wire properties and its own extras."""
        return host_batch([e for e, _ in pairs], first_sequence=first_sequence,
                          properties=[wire_properties(e, replay=False, extra=p) for e, p in pairs])


def event_data(event: Event, props: Mapping[str, str]) -> EventData:
    """An EventData as a consumer receives it: property keys and values as bytes."""
    data = EventData(encode(event))
    data.properties = {k.encode(): v.encode() if isinstance(v, str) else v
                       for k, v in {**wire_properties(event, replay=True), **props}.items()}
    return data


def ids(span: ReadableSpan) -> tuple[int, int, int | None]:
    parent = span.parent.span_id if span.parent is not None else None
    return span.context.trace_id, span.context.span_id, parent


def test_one_decision_is_one_trace_from_the_kline_to_its_fill(spans: InMemorySpanExporter,
                                                                bars_1m: list[Bar]) -> None:
    hubs = Hubs()
    runtime.reset()
    runtime.configure(publisher=hubs.publisher, dead_letters=InMemoryDeadLetterSink(),
                      documents=InMemoryDocumentStore(), environ=ENV)
    try:
        klines = [b.to_kline() for b in bars_1m[:60]]
        sink = PublisherSink(hubs.publisher)
        key = StreamKey("BTCUSDT", StreamKind.KLINE, "1m")
        for k in klines:  # the ingestor: one publish (and trace root) per kline here
            sink.write([Item(key, k.open_time, k, "")])
        ingested = hubs.sent(topology.MARKET_DATA.name)
        assert all(TRACEPARENT in p for _, p in ingested)
        assert len({p[TRACEPARENT] for _, p in ingested}) == len(klines)

        trigger("positions_marks")(hubs.batch(ingested[:1]))  # the account risk reads
        trigger("signals")(hubs.batch(ingested))  # one batch, per-event trace context
        signal, signal_props = hubs.sent(topology.SIGNALS.name)[0]
        assert isinstance(signal, Signal)
        kline_props = next(p for k, p in ingested if isinstance(k, Kline) and k.open_time == signal.bar_open_time)

        trigger("risk")(hubs.batch([(signal, {**signal_props, "replay": "true"})]))
        (intent, intent_props), = hubs.sent(topology.ORDERS.name)
        assert isinstance(intent, OrderIntent)

        svc = ExecutorService(publisher=hubs.publisher, dead_letters=InMemoryDeadLetterSink(), cash=10_000.0,
                              risk_config=RiskConfig.replay(), clock=lambda i: i.event_time)
        svc.orders.process([to_delivery(event_data(intent, intent_props), "0")])
        assert hubs.sent(topology.EXECUTIONS.name) == []  # the paper venue fills at the next bar's open
        nxt = next(i for i, (k, _) in enumerate(ingested) if isinstance(k, Kline) and k.open_time > intent.event_time)
        next_kline, next_props = ingested[nxt]
        svc.market.process([to_delivery(event_data(next_kline, next_props), "0")])
        (report, report_props), = hubs.sent(topology.EXECUTIONS.name)
        assert isinstance(report, ExecutionReport) and report.status is OrderStatus.FILLED

        trigger("positions")(hubs.batch([(report, report_props)]))
    finally:
        runtime.reset()

    finished = spans.get_finished_spans()
    handles: dict[str, list[ReadableSpan]] = {}
    for s in finished:
        handles.setdefault(s.name, []).append(s)
    root = incoming(kline_props)
    assert root is not None
    publish = next(s for s in finished if s.context.span_id == root.span_id)
    assert publish.name == "market-data publish" and publish.kind is SpanKind.PRODUCER

    def child_of(parent_props: Mapping[str, str], name: str) -> ReadableSpan:
        parent = incoming(parent_props)
        assert parent is not None
        [span] = [s for s in handles[name] if s.parent is not None and s.parent.span_id == parent.span_id]
        return span

    sig = child_of(kline_props, "signals handle")
    risk = child_of(signal_props, "risk handle")
    executor = child_of(intent_props, "executor handle")
    positions = child_of(report_props, "positions handle")
    chain = [publish, sig, risk, executor, positions]
    assert {s.context.trace_id for s in chain} == {root.trace_id}
    # The parent chain: each hop's span is the child of the span that published its input.
    for parent, child in itertools.pairwise(chain):
        assert ids(child)[2] == ids(parent)[1], (parent.name, child.name)
    assert incoming(signal_props).span_id == sig.context.span_id  # type: ignore[union-attr]
    assert incoming(intent_props).span_id == risk.context.span_id  # type: ignore[union-attr]
    # The fill was reported while the next kline was handled; it continues the order's trace,
    # and the next kline's own trace stays apart.
    assert incoming(report_props).span_id == executor.context.span_id  # type: ignore[union-attr]
    next_root = incoming(next_props)
    assert next_root is not None and next_root.trace_id != root.trace_id
    market = [s for s in finished if s.name == "executor handle" and s.context.trace_id == next_root.trace_id]
    assert len(market) == 1 and market[0].parent.span_id == next_root.span_id  # type: ignore[union-attr]
    # Each handle span is linked to its batch span and names where the event sat.
    batch_ids = {s.context.span_id for s in finished if s.name.endswith(" process")}
    for span in (sig, risk, executor, positions):
        assert span.kind is SpanKind.CONSUMER
        assert [link.context.span_id for link in span.links] and all(
            link.context.span_id in batch_ids for link in span.links)
        assert span.attributes["messaging.destination.partition.id"] == "0"
    assert sig.attributes["messaging.destination.name"] == topology.MARKET_DATA.name


def test_an_event_without_context_is_a_child_of_its_batch_span(spans: InMemorySpanExporter) -> None:
    from shared.adapters import BatchProcessor, Delivery, StepResult

    pub = InMemoryPublisher()
    proc = BatchProcessor(hub=topology.SIGNALS.name, consumer="risk", event_type=Signal,
                          step=lambda s: StepResult(), publish_to=None, publisher=pub,
                          dead_letters=InMemoryDeadLetterSink())
    proc.process([Delivery(body=b"not json", partition_id="1")])  # dead-lettered, still traced
    [handle] = [s for s in spans.get_finished_spans() if s.name == "risk handle"]
    [batch] = [s for s in spans.get_finished_spans() if s.name == "risk process"]
    assert handle.parent is not None and handle.parent.span_id == batch.context.span_id
    assert handle.context.trace_id == batch.context.trace_id


def test_the_propagator_reads_bytes_and_keeps_tracestate(spans: InMemorySpanExporter) -> None:
    props = {b"traceparent": PARENT.encode(), b"tracestate": b"congo=t61rcWkgMzE"}
    ctx = incoming(props)
    assert ctx is not None and format(ctx.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert properties_of(ctx) == {TRACEPARENT: PARENT, TRACESTATE: "congo=t61rcWkgMzE"}
    assert incoming({TRACEPARENT: "garbage"}) is None and incoming({}) is None
    assert extract({}) is not None
    assert without_trace({**props, b"replay": b"x", "traceparent": "y"}) == {b"replay": b"x"}
