"""The registered Function triggers, invoked for real, against in-memory adapters.

"Prove it now": the `signals` and `risk` functions exactly as the worker indexes them from
`function_app.app`, fed real `azure.functions.EventHubEvent` batches of the bundled BTCUSDT 1m
data, publish the same signals and order intents (ids and contents) as the in-process replay.
The executor and positions stages, which are not Functions, are played by the same shared
components replay wires (paper venue, executor core, position book).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
from azure.functions.eventhub import EventHubTriggerConverter
from eventhub_host import host_batch, registered, trigger
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from functions import runtime
from shared import telemetry, topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher, PublishError
from shared.data import read_klines
from shared.events import Event, Kline, OrderIntent, Signal, decode_as, encode
from shared.execution import Executor, PaperVenue, run_sync
from shared.market import Bar
from shared.pipeline.replay import ReplayResult, run_replay
from shared.pipeline.risk import RiskHandler
from shared.pipeline.signals import SignalHandler
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine
from shared.samples import btcusdt_1m_paths

STRATEGY = "sma_cross"
PARAMS = {"fast": 10, "slow": 20}
CASH = 10_000.0
COMMISSION = 0.001
BATCH = 100







def hub_events(events: Sequence[Event], first_sequence: int = 0) -> list[func.EventHubEvent]:
    """What the host hands a cardinality=many binary trigger (through the worker's converter):
    bodies, system properties and the publisher's application properties, marked `replay` so
    risk checks them in event time."""
    return host_batch(events, first_sequence=first_sequence)


def batches(events: Sequence[func.EventHubEvent], size: int = BATCH) -> Iterator[list[func.EventHubEvent]]:
    for i in range(0, len(events), size):
        yield list(events[i:i + size])


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    return read_klines(btcusdt_1m_paths()).bars


@pytest.fixture(scope="module")
def replay(bars: list[Bar]) -> ReplayResult:
    return run_replay(bars, STRATEGY, PARAMS, cash=CASH, commission=COMMISSION)


@pytest.fixture(scope="module")
def klines(bars: list[Bar]) -> list[func.EventHubEvent]:
    return hub_events([b.to_kline() for b in bars])


class Harness:
    """In-memory adapters wired into the runtime, with a metric reader to assert real counts."""

    def __init__(self) -> None:
        self.publisher = InMemoryPublisher()
        self.dead_letters = InMemoryDeadLetterSink()
        self.reader = InMemoryMetricReader()
        self.metrics = telemetry.Metrics(MeterProvider(metric_readers=[self.reader]).get_meter("test"))
        self.book = PositionBook(cash=CASH)
        self.signal_handler = SignalHandler(STRATEGY, PARAMS)
        self.risk_handler = RiskHandler(RiskEngine(RiskConfig()), self.book.snapshot_account)
        runtime.reset()
        runtime.configure(publisher=self.publisher, dead_letters=self.dead_letters,
                          signal_handler=self.signal_handler, risk_handler=self.risk_handler,
                          metrics=self.metrics)

    def counts(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], int]:
        return telemetry.collect_counts(self.reader)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    runtime.reset()


def run_risk_stage(h: Harness, bars: Sequence[Bar], signals: Sequence[Signal]) -> list[OrderIntent]:
    """Drive the `risk` function bar by bar in event time, as replay's pipeline does.

    Each signal goes to the risk function in its own batch (the account it is checked against
    moves between signals); each published intent, decoded from its wire form, is executed by
    the paper venue at the next bar's open and booked, exactly like `Pipeline.on_bar`.
    """
    venue = PaperVenue(commission=COMMISSION)
    executor = Executor(venue, RiskEngine(RiskConfig()), h.book)  # books the fills into h.book
    by_bar = {s.bar_open_time: s for s in signals}
    risk = trigger("risk")
    sent = 0
    executed = 0

    for bar in bars:
        if venue.pending:
            for update in venue.on_bar(bar):
                run_sync(executor.on_order_update(update, bar.open_time))
        h.book.mark(bar.symbol, bar.close, bar.close_time)
        signal = by_bar.get(bar.open_time)
        if signal is None:
            continue
        risk(hub_events([signal], first_sequence=sent))
        sent += 1
        for intent in h.publisher.events(topology.ORDERS.name)[executed:]:
            executed += 1
            wire = decode_as(encode(intent), OrderIntent)
            run_sync(executor.on_intent(wire, bar.close_time))
    return [decode_as(encode(i), OrderIntent) for i in h.publisher.events(topology.ORDERS.name)]


# -- binding metadata -------------------------------------------------------------------------


def test_app_registers_exactly_the_pipeline_triggers() -> None:
    assert sorted(registered()) == ["health", "positions", "positions_marks", "risk", "signals", "trading_state"]


@pytest.mark.parametrize(("name", "hub", "publishes_to"), [
    ("signals", topology.MARKET_DATA.name, topology.SIGNALS.name),
    ("risk", topology.SIGNALS.name, topology.ORDERS.name),
])
def test_binding_metadata_is_the_topology(name: str, hub: str, publishes_to: str) -> None:
    fn = registered()[name]
    bindings = json.loads(fn.get_function_json())["bindings"]  # what the worker reports to the host
    assert len(bindings) == 1  # no output binding: publishing goes through the SDK (partition key)
    b = bindings[0]
    assert b["type"] == "eventHubTrigger"
    assert b["direction"] == "IN"
    assert b["eventHubName"] == hub
    assert b["consumerGroup"] == topology.consumer_group(hub, name)
    assert b["connection"] == topology.EVENTHUB_CONNECTION_SETTING
    assert b["cardinality"] == "MANY"
    assert b["dataType"] == "BINARY"  # raw bytes: malformed bodies are dead-lettered as they came
    # The function publishes where the topology says it is the producer.
    assert topology.hub(publishes_to).producer == name
    # A publish failure raises; only a retry policy keeps the host from checkpointing past it.
    retry = fn.get_settings_dict("retry_policy")
    assert retry is not None
    assert retry["strategy"] == "exponential_backoff"
    assert retry["max_retry_count"] == "-1"


@pytest.mark.parametrize("name", ["signals", "risk"])
def test_the_worker_accepts_the_batch_annotation(name: str) -> None:
    import inspect

    param = inspect.signature(trigger(name)).parameters["events"]
    assert not isinstance(param.annotation, str)
    assert EventHubTriggerConverter.check_input_type_annotation(param.annotation)


def test_processors_consume_and_publish_where_the_topology_says(harness: Harness) -> None:
    sp, rp = runtime.signals_processor(), runtime.risk_processor()
    assert (sp.hub, sp.consumer, sp.publish_to) == ("market-data", "signals", "signals")
    assert (rp.hub, rp.consumer, rp.publish_to) == ("signals", "risk", "orders")


# -- the proof: Functions path == replay ---------------------------------------------------------


def test_functions_publish_exactly_what_replay_produces(harness: Harness, bars: list[Bar],
                                                        klines: list[func.EventHubEvent],
                                                        replay: ReplayResult) -> None:
    assert len(bars) == 4320 and len(replay.signals) > 10 and len(replay.intents) > 5

    signals_fn = trigger("signals")
    for batch in batches(klines):
        signals_fn(batch)
    published = [decode_as(encode(s), Signal) for s in harness.publisher.events(topology.SIGNALS.name)]
    assert [s.event_id for s in published] == [s.event_id for s in replay.signals]
    assert published == replay.signals
    assert set(harness.publisher.partition_keys[topology.SIGNALS.name]) == {"BTCUSDT"}

    intents = run_risk_stage(harness, bars, published)
    assert [i.event_id for i in intents] == [i.event_id for i in replay.intents]
    assert intents == replay.intents
    assert set(harness.publisher.partition_keys[topology.ORDERS.name]) == {"BTCUSDT"}
    assert harness.dead_letters.all() == []

    # Telemetry counted what actually happened, through the real OTel SDK.
    counts = harness.counts()
    assert telemetry.total(counts, telemetry.EVENTS, consumer="signals", outcome="ok") == len(bars)
    assert telemetry.total(counts, telemetry.EVENTS, consumer="risk", outcome="ok") == len(replay.signals)
    assert telemetry.total(counts, telemetry.SIGNALS) == len(replay.signals)
    for side in ("BUY", "SELL"):
        assert telemetry.total(counts, telemetry.SIGNALS, side=side) == sum(
            1 for s in replay.signals if s.side.value == side)
    # Rejections and reductions are decision events; plain approvals are counted by the engine.
    layer1 = Counter((d.status.value, d.reasons[0] if d.reasons else "none")
                     for d in replay.decisions if d.layer == 1)
    layer1[("APPROVED", "none")] = replay.risk["layer1"]["approved"]
    assert layer1[("APPROVED", "none")] == len(replay.intents) > 5
    for (status, reason), n in layer1.items():
        assert telemetry.total(counts, telemetry.DECISIONS, layer="1", status=status, reason=reason) == n
    assert telemetry.total(counts, telemetry.DECISIONS) == sum(layer1.values())
    assert telemetry.total(counts, telemetry.DEAD_LETTERS) == 0


def test_a_redelivered_batch_yields_nothing_new(harness: Harness, klines: list[func.EventHubEvent]) -> None:
    day = klines[:1440]
    signals_fn = trigger("signals")
    for batch in batches(day):
        signals_fn(batch)
    signals = harness.publisher.events(topology.SIGNALS.name)
    assert signals
    risk_fn = trigger("risk")
    risk_fn(hub_events(signals))
    intents = harness.publisher.events(topology.ORDERS.name)
    assert intents  # at least the first BUY on a flat account

    for batch in batches(day):  # the host redelivers everything (e.g. after a lost checkpoint)
        signals_fn(batch)
    risk_fn(hub_events(signals))
    assert harness.publisher.events(topology.SIGNALS.name) == signals
    assert harness.publisher.events(topology.ORDERS.name) == intents
    assert harness.dead_letters.all() == []
    counts = harness.counts()
    # Redeliveries stop at the batch loop's content-checked dedup, before any handler.
    assert telemetry.total(counts, telemetry.EVENTS, consumer="risk", outcome="duplicate") == len(signals)
    assert telemetry.total(counts, telemetry.EVENTS, consumer="signals", outcome="duplicate") == len(day)


# -- bad events are dead-lettered, good ones go on ---------------------------------------------


def _mutated(kline: Kline, mutate: Callable[[dict[str, Any]], None]) -> bytes:
    obj = json.loads(encode(kline))
    mutate(obj)
    return json.dumps(obj).encode()


def test_one_malformed_event_is_dead_lettered_and_the_rest_published(harness: Harness,
                                                                     bars: list[Bar]) -> None:
    good = [b.to_kline() for b in bars[:300]]
    bad_index = 150
    bad_body = _mutated(good[bad_index], lambda o: o.pop("close"))
    items: list[Kline | bytes] = [*good]
    items[bad_index] = bad_body
    events = host_batch(items, first_sequence=1000, enqueued_ms=[k.close_time for k in good],
                        partition_key="BTCUSDT")
    bad = events[bad_index]
    trigger("signals")(events)

    [record] = harness.dead_letters.all()
    assert record.error_type == "MalformedEvent"
    assert record.field == "close"
    assert "close" in record.reason
    assert (record.hub, record.consumer) == ("market-data", "signals")
    assert record.partition_key == "BTCUSDT"
    assert record.sequence_number == 1000 + bad_index
    assert record.offset == str(bad.offset)
    assert record.enqueued_time == good[bad_index].close_time
    assert base64.b64decode(record.body_b64) == bad_body
    assert record.blob_name().startswith("market-data/2020/01/01/")

    # Every other bar went through: the same signals as a handler that never saw the bad one.
    reference = SignalHandler(STRATEGY, PARAMS)
    expected = [s for i, k in enumerate(good) if i != bad_index
                if (s := reference.on_kline(k)) is not None]
    assert expected
    assert harness.publisher.events(topology.SIGNALS.name) == expected
    counts = harness.counts()
    assert telemetry.total(counts, telemetry.EVENTS, consumer="signals", outcome="ok") == 299
    assert telemetry.total(counts, telemetry.EVENTS, consumer="signals", outcome="dead_letter") == 1
    assert telemetry.total(counts, telemetry.DEAD_LETTERS, error_type="MalformedEvent") == 1


@pytest.mark.parametrize(("body", "error_type", "field"), [
    (b"\xff\xfe not json", "MalformedEvent", None),
    (b"[1, 2, 3]", "MalformedEvent", None),
    (b'{"schema_version": 99, "type": "kline"}', "UnknownSchemaVersion", "schema_version"),
])
def test_undecodable_bodies_are_dead_lettered_with_the_reason(harness: Harness, body: bytes,
                                                              error_type: str, field: str | None) -> None:
    trigger("signals")([func.EventHubEvent(body=body, sequence_number=7, offset="7",
                                           enqueued_time=datetime(2024, 5, 6, 7, 8, tzinfo=UTC))])
    [record] = harness.dead_letters.all()
    assert (record.error_type, record.field) == (error_type, field)
    assert record.body == body
    assert record.blob_name().startswith("market-data/2024/05/06/")
    assert harness.publisher.events(topology.SIGNALS.name) == []


def test_an_event_of_the_wrong_type_is_dead_lettered(harness: Harness, replay: ReplayResult) -> None:
    # A kline on the signals hub is not something risk can act on.
    wrong = replay.bars[0].to_kline()
    trigger("risk")(hub_events([wrong, replay.signals[0]]))
    [record] = harness.dead_letters.all()
    assert (record.error_type, record.field, record.hub, record.consumer) == (
        "UnknownEventType", "type", "signals", "risk")
    assert len(harness.publisher.events(topology.ORDERS.name)) == 1  # the BUY signal still went through


class ExplodingSignalHandler(SignalHandler):
    def __init__(self, bad_open_time: int) -> None:
        super().__init__(STRATEGY, PARAMS)
        self.bad_open_time = bad_open_time

    def on_kline(self, kline: Kline) -> Signal | None:
        if kline.open_time == self.bad_open_time:
            raise ZeroDivisionError("indicator blew up")
        return super().on_kline(kline)


def test_a_handler_error_dead_letters_that_event_only(harness: Harness, bars: list[Bar]) -> None:
    good = [b.to_kline() for b in bars[:200]]
    runtime.configure(signal_handler=ExplodingSignalHandler(good[120].open_time))
    trigger("signals")(hub_events(good))
    [record] = harness.dead_letters.all()
    assert (record.error_type, record.field, record.event_id) == ("ZeroDivisionError", None, good[120].event_id)
    assert record.reason == "indicator blew up"
    reference = SignalHandler(STRATEGY, PARAMS)
    expected = [s for i, k in enumerate(good) if i != 120 if (s := reference.on_kline(k)) is not None]
    assert harness.publisher.events(topology.SIGNALS.name) == expected


# -- publish failures raise, and the retry loses nothing ----------------------------------------


class FlakyPublisher:
    """Fails the first `failures` publishes (as a broken connection would), then delivers."""

    def __init__(self, inner: InMemoryPublisher, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0

    def publish(self, hub: str, events: Sequence[Event], properties: Mapping[str, str] | None = None) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise PublishError(f"publishing {len(events)} events to hub {hub!r} failed: ConnectionError")
        self.inner.publish(hub, events, properties)


def test_a_publish_failure_raises_and_the_retry_publishes_the_same_events(harness: Harness,
                                                                         bars: list[Bar]) -> None:
    flaky = FlakyPublisher(harness.publisher, failures=2)
    runtime.configure(publisher=flaky)
    day = hub_events([b.to_kline() for b in bars[:1440]])
    reference = SignalHandler(STRATEGY, PARAMS)
    expected = [s for e in day if (s := reference.on_kline(decode_as(e.get_body(), Kline))) is not None]
    signals_fn = trigger("signals")

    with pytest.raises(PublishError):
        signals_fn(day)  # the host would now retry this very batch (retry policy, no checkpoint)
    with pytest.raises(PublishError):
        signals_fn(day)
    assert harness.publisher.events(topology.SIGNALS.name) == []
    assert harness.dead_letters.all() == []  # a publish failure is not a bad event
    assert runtime.signals_processor().pending == len(day)

    signals_fn(day)  # third attempt succeeds: the outputs computed on the first attempt go out
    assert harness.publisher.events(topology.SIGNALS.name) == expected
    assert runtime.signals_processor().pending == 0
    counts = harness.counts()
    assert telemetry.total(counts, telemetry.EVENTS, consumer="signals", outcome="ok") == len(day)
    assert telemetry.total(counts, telemetry.SIGNALS) == len(expected)


def test_a_dead_letter_failure_raises_too(harness: Harness, bars: list[Bar]) -> None:
    class BrokenSink:
        def put(self, record: object) -> None:
            raise OSError("storage unreachable")

    runtime.configure(dead_letters=BrokenSink())
    events = [*hub_events([bars[0].to_kline()]), func.EventHubEvent(body=b"garbage")]
    with pytest.raises(OSError, match="storage unreachable"):
        trigger("signals")(events)
    assert harness.publisher.events(topology.SIGNALS.name) == []


# -- trigger event conversion -----------------------------------------------------------------


def test_to_delivery_keeps_body_and_position() -> None:
    naive = datetime(2020, 1, 1, 0, 1, 0)  # the host's EnqueuedTimeUtc may come without tzinfo
    event = func.EventHubEvent(body=b"\x00raw", partition_key="ETHUSDT", sequence_number=42,
                               offset=123456, enqueued_time=naive)  # type: ignore[arg-type]
    d = runtime.to_delivery(event)
    assert d.body == b"\x00raw"
    assert (d.partition_key, d.sequence_number, d.offset) == ("ETHUSDT", 42, "123456")
    assert d.enqueued_time == 1577836860000
    assert d.partition_id is None
