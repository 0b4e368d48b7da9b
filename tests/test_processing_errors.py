"""The batch loop tells bad events from failures (shared/adapters/processing.py), on the real
registered functions with batches built through the worker's converter."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from eventhub_host import host_batch, trigger, wire_properties
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from functions import runtime
from shared import telemetry, topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher
from shared.adapters.documents import InMemoryDocumentStore
from shared.adapters.processing import BatchProcessor, Delivery, StepResult
from shared.events import Event, Kline, Signal, Trade, encode
from shared.market import Bar
from shared.pipeline.errors import InfrastructureError
from shared.pipeline.signals import SignalHandler

STRATEGY = "sma_cross"
PARAMS = {"fast": 10, "slow": 20}




class Rig:
    def __init__(self, signal_handler: SignalHandler | None = None) -> None:
        self.publisher = InMemoryPublisher()
        self.dead_letters = InMemoryDeadLetterSink()
        self.reader = InMemoryMetricReader()
        self.metrics = telemetry.Metrics(MeterProvider(metric_readers=[self.reader]).get_meter("test"))
        runtime.reset()
        runtime.configure(publisher=self.publisher, dead_letters=self.dead_letters, metrics=self.metrics,
                          signal_handler=signal_handler or SignalHandler(STRATEGY, PARAMS),
                          documents=InMemoryDocumentStore(), environ={"MARKETFLOW_ACCOUNT_CASH": "10000"})

    def total(self, metric: str, **attrs: str) -> int:
        return telemetry.total(telemetry.collect_counts(self.reader), metric, **attrs)

    def signals(self) -> list[Event]:
        return self.publisher.events(topology.SIGNALS.name)


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield Rig()
    runtime.reset()


def _klines(bars: Sequence[Bar]) -> list[Kline]:
    return [b.to_kline() for b in bars]


def _reference(klines: Sequence[Kline]) -> list[Signal]:
    ref = SignalHandler(STRATEGY, PARAMS)
    return [s for k in klines if (s := ref.on_kline(k)) is not None]


def test_market_data_of_other_types_and_intervals_is_skipped_before_decoding(rig: Rig, bars_1m: list[Bar]) -> None:
    klines = _klines(bars_1m[:300])
    five = Bar("BTCUSDT", "5m", klines[0].open_time, klines[0].open_time + 299_999, 1.0, 2.0, 0.5, 1.5, 3.0).to_kline()
    trade = Trade.create(symbol="BTCUSDT", trade_id=1, price=1.0, quantity=1.0, trade_time=1, is_buyer_maker=True)
    # Bodies that would not even decode, but their properties say they are not for `signals`.
    junk_book = b"\x00 not json"
    items: list[Kline | Trade | bytes] = [*klines[:100], five, trade, junk_book, *klines[100:]]
    props = [wire_properties(k) if isinstance(k, Event) else {"marketflow.type": "book_ticker"} for k in items]
    props[100] = {**props[100], "marketflow.interval": "5m"}
    trigger("signals")(host_batch(items, properties=props))
    assert rig.dead_letters.all() == []
    assert rig.signals() == _reference(klines)
    assert rig.total(telemetry.EVENTS, consumer="signals", outcome="skipped", skip="type:trade") == 1
    assert rig.total(telemetry.EVENTS, consumer="signals", outcome="skipped", skip="type:book_ticker") == 1
    assert rig.total(telemetry.EVENTS, consumer="signals", outcome="skipped", skip="interval:5m") == 1
    # Without properties (an older producer) the decoded type and interval decide the same way.
    trigger("signals")(host_batch([five, trade], properties=[{}, {}], first_sequence=1000))
    assert rig.dead_letters.all() == []
    assert rig.total(telemetry.EVENTS, consumer="signals", outcome="skipped") == 5


def test_same_id_other_content_is_an_id_conflict_not_a_duplicate(rig: Rig, bars_1m: list[Bar]) -> None:
    klines = _klines(bars_1m[:60])
    signals_fn = trigger("signals")
    signals_fn(host_batch(klines))
    forged = klines[30].model_copy(update={"close": klines[30].close * 1.01, "high": klines[30].high * 1.02})
    signals_fn(host_batch([klines[29], forged], first_sequence=100))
    [record] = rig.dead_letters.all()
    assert (record.reason_code, record.event_id) == ("ID_CONFLICT", klines[30].event_id)
    assert record.body == encode(forged)
    assert record.properties["marketflow.type"] == "kline"
    assert rig.total(telemetry.EVENTS, consumer="signals", outcome="duplicate") == 1  # klines[29], same bytes
    assert rig.total(telemetry.DEAD_LETTERS, reason="ID_CONFLICT") == 1


def test_a_late_kline_is_dead_lettered_and_counted(rig: Rig, bars_1m: list[Bar]) -> None:
    klines = _klines(bars_1m[:60])
    # Deliveries whose ids are no longer in the window (capacity 10) but older than the last bar.
    runtime.signals_processor().windows.clear()
    proc = runtime.signals_processor()
    proc._dedup_capacity = 10
    trigger("signals")(host_batch(klines))
    trigger("signals")(host_batch([klines[5]], first_sequence=500))
    [record] = rig.dead_letters.all()
    assert (record.reason_code, record.event_id) == ("LATE", klines[5].event_id)
    assert rig.total(telemetry.DEAD_LETTERS, consumer="signals", reason="LATE") == 1


class _Exploding(SignalHandler):
    def __init__(self, bad_open_time: int, exc: Exception) -> None:
        super().__init__(STRATEGY, PARAMS)
        self.bad_open_time, self.exc = bad_open_time, exc

    def on_kline(self, kline: Kline) -> Signal | None:
        if kline.open_time == self.bad_open_time:
            raise self.exc
        return super().on_kline(kline)


def test_a_handler_bug_is_dead_lettered_with_its_stack_and_counted(bars_1m: list[Bar]) -> None:
    klines = _klines(bars_1m[:200])
    rig = Rig(_Exploding(klines[120].open_time, ZeroDivisionError("indicator blew up")))
    try:
        trigger("signals")(host_batch(klines))
    finally:
        runtime.reset()
    [record] = rig.dead_letters.all()
    assert (record.reason_code, record.error_type) == ("HANDLER_ERROR", "ZeroDivisionError")
    assert record.stack is not None and "ZeroDivisionError: indicator blew up" in record.stack
    assert "on_kline" in record.stack
    assert rig.total(telemetry.HANDLER_ERRORS, consumer="signals", error_type="ZeroDivisionError") == 1
    assert rig.signals() == _reference([k for i, k in enumerate(klines) if i != 120])


def test_an_infrastructure_failure_in_a_handler_raises_for_a_retry(bars_1m: list[Bar]) -> None:
    klines = _klines(bars_1m[:50])
    handler = _Exploding(klines[20].open_time, InfrastructureError("state store unreachable"))
    rig = Rig(handler)
    try:
        with pytest.raises(InfrastructureError):
            trigger("signals")(host_batch(klines))
        assert rig.dead_letters.all() == [] and rig.signals() == []
        handler.bad_open_time = -1  # the store is back; the host retries the same batch
        # The strategy saw klines[:20] on the failed try; a fresh handler stands in for the
        # restart the retry would be (per-partition state restore is tested elsewhere).
    finally:
        runtime.reset()


def test_an_output_that_can_never_fit_the_hub_is_dead_lettered(bars_1m: list[Bar]) -> None:
    publisher, sink = InMemoryPublisher(), InMemoryDeadLetterSink()
    klines = _klines(bars_1m[:400])
    ref = _reference(klines)
    assert len(ref) >= 2

    proc = BatchProcessor(hub=topology.MARKET_DATA.name, consumer="signals", event_type=Kline,
                          step=lambda k: StepResult(publish=tuple(s for s in ref if s.market_event_id == k.event_id)),
                          publish_to=topology.SIGNALS.name, publisher=publisher, dead_letters=sink,
                          max_output_bytes=min(len(encode(s)) for s in ref) - 1)
    out = proc.process([Delivery(body=encode(k), partition_id="0", sequence_number=i,
                                 properties={"marketflow.type": "kline"}) for i, k in enumerate(klines)])
    assert {r.reason_code for r in sink.all()} == {"OUTPUT_TOO_LARGE"}
    assert len(sink.all()) == len(ref)
    assert out.ok == len(klines) - len(ref)
    assert publisher.events(topology.SIGNALS.name) == []


@pytest.mark.parametrize(("field", "size"), [("strategy", 1_000_000), ("market_event_id", 200)])
def test_every_string_of_a_signal_is_bounded(rig: Rig, bars_1m: list[Bar], field: str, size: int) -> None:
    signal = _reference(_klines(bars_1m[:400]))[0]
    body = json.loads(encode(signal))
    body[field] = "x" * size
    raw = json.dumps(body).encode()
    trigger("risk")(host_batch([raw], properties=[{"marketflow.type": "signal", "replay": "true"}]))
    [record] = rig.dead_letters.all()
    assert (record.reason_code, record.error_type, record.field) == ("DECODE", "MalformedEvent", field)
    assert len(record.body) == len(raw)


def test_every_wire_string_field_has_a_bound() -> None:
    from shared.events import EVENT_TYPES
    from shared.events.trading import Fill

    for model in [*EVENT_TYPES.values(), Fill]:
        for name, info in model.model_fields.items():
            if info.annotation is str or info.annotation == (str | None):
                bounded = any(getattr(m, "max_length", None) for m in info.metadata) or name == "type"
                assert bounded, f"{model.__name__}.{name} has no max_length"


def _unused(_: Any) -> None:  # keep imports honest for type checkers
    pass
