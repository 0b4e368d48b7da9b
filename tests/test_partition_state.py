"""Per-partition handler state survives a takeover: a crash mid-batch then a restart, and two
instances taking each other's partitions, produce exactly one uninterrupted instance's outputs.

Each takeover test runs on the in-memory store and on the Blob document store on Azurite (what
the Functions use in Azure: ETag compare-and-set), every instance with a client of its own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence

import azure.functions as func
import pytest
from eventhub_host import host_batch, trigger
from opentelemetry.sdk.metrics import MeterProvider

from functions import runtime
from shared import telemetry, topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher
from shared.adapters.documents import DocumentStore, InMemoryDocumentStore
from shared.adapters.processing import Delivery
from shared.events import Event, Kline, encode
from shared.market import Bar
from shared.pipeline.signals import SignalHandler

ENV = {"MARKETFLOW_STRATEGY": "sma_cross", "MARKETFLOW_STRATEGY_PARAMS": "fast=10 slow=20"}
BATCH = 50
Stores = Callable[[], DocumentStore]


@pytest.fixture(params=["memory", pytest.param("azurite", marks=pytest.mark.azurite)])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    """A new client of one shared store per call: the same object in memory; on Azurite a new
    Blob client of one container, as each Function instance has its own."""
    if request.param == "memory":
        shared = InMemoryDocumentStore()
        yield lambda: shared
        return
    from azure.storage.blob import BlobServiceClient

    from shared.adapters.stores import documents_from_settings

    container = f"partition-{uuid.uuid4().hex[:16]}"
    yield lambda: documents_from_settings({"STATE_STORAGE": "UseDevelopmentStorage=true",
                                           "STATE_STORAGE_CONTAINER": container})
    with contextlib.suppress(Exception):
        BlobServiceClient.from_connection_string("UseDevelopmentStorage=true").delete_container(container)


def _metrics() -> telemetry.Metrics:
    return telemetry.Metrics(MeterProvider().get_meter("test"))


def start_instance(docs: DocumentStore, publisher: InMemoryPublisher) -> None:
    """A new process: the runtime built from settings, with nothing in memory."""
    runtime.reset()
    runtime.configure(publisher=publisher, dead_letters=InMemoryDeadLetterSink(), documents=docs,
                      metrics=_metrics(), environ=ENV)


def uninterrupted(klines: Sequence[Kline]) -> list[Event]:
    ref = SignalHandler("sma_cross", {"fast": 10, "slow": 20})
    return [s for k in klines if (s := ref.on_kline(k)) is not None]


def _batches(klines: Sequence[Kline], partition: str = "0") -> list[list[func.EventHubEvent]]:
    return [host_batch(klines[i:i + BATCH], partition_id=partition, first_sequence=i)
            for i in range(0, len(klines), BATCH)]


class Crash(BaseException):
    """The process dies (not an Exception: nothing catches it, as with a killed worker)."""


def test_a_crash_mid_batch_then_a_restart_continues_exactly(bars_1m: list[Bar], stores: Stores) -> None:
    klines = [b.to_kline() for b in bars_1m[:1500]]
    expected = uninterrupted(klines)
    publisher = InMemoryPublisher()
    batches = _batches(klines)
    start_instance(stores(), publisher)
    fn = trigger("signals")
    crash_at = 13
    for batch in batches[:crash_at]:
        fn(batch)
    handler = runtime.SignalsConsumer  # the class the runtime uses; we poison the live handler

    # The worker dies in the middle of batch 13: the strategy has seen part of it, nothing of it
    # was published or saved, and the host never checkpointed it.
    proc = runtime.signals_processor()
    original = proc._step_with_delivery
    seen = 0

    def dying(kline: Kline, delivery: Delivery) -> object:
        nonlocal seen
        seen += 1
        if seen == 20:
            raise Crash
        assert original is not None
        return original(kline, delivery)

    proc._step_with_delivery = dying  # type: ignore[assignment]
    with pytest.raises(Crash):
        fn(batches[crash_at])
    assert handler is not None

    start_instance(stores(), publisher)  # another instance takes the partition: restores, then redelivery
    for batch in batches[crash_at:]:
        fn(batch)
    assert publisher.events(topology.SIGNALS.name) == expected
    runtime.reset()


def test_a_crash_after_publishing_before_saving_republishes_the_same_ids(bars_1m: list[Bar],
                                                                         stores: Stores) -> None:
    klines = [b.to_kline() for b in bars_1m[:1500]]
    expected = uninterrupted(klines)
    publisher = InMemoryPublisher()
    batches = _batches(klines)
    start_instance(stores(), publisher)
    fn = trigger("signals")
    for batch in batches[:10]:
        fn(batch)
    states = runtime.signals_processor().partition_states
    assert states is not None

    def die(*_: object) -> None:
        raise Crash

    states.save = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        fn(batches[10])  # published, then died before the save
    start_instance(stores(), publisher)
    for batch in batches[10:]:
        fn(batch)
    published = publisher.events(topology.SIGNALS.name)
    # At least once: batch 10's signals went out twice, with the same ids and bytes; deduplicated
    # downstream by id, the stream is exactly the uninterrupted one.
    by_id: dict[str, bytes] = {}
    for s in published:
        assert by_id.setdefault(s.event_id, encode(s)) == encode(s)
    deduped = list({s.event_id: s for s in published}.values())
    assert deduped == expected
    assert len(published) > len(expected)
    runtime.reset()


def _two_symbols(bars: Sequence[Bar]) -> tuple[list[Kline], list[Kline]]:
    btc = [b.to_kline() for b in bars]
    eth = [Bar("ETHUSDT", "1m", b.open_time, b.close_time, b.open / 50, b.high / 50, b.low / 50, b.close / 50,
               b.volume * 3).to_kline() for b in bars]
    return btc, eth


def test_two_instances_taking_each_others_partitions_decide_as_one(bars_1m: list[Bar], stores: Stores) -> None:
    btc, eth = _two_symbols(bars_1m[:1200])
    out_a, out_b = InMemoryPublisher(), InMemoryPublisher()

    def instance(publisher: InMemoryPublisher) -> runtime.SignalsConsumer:
        return runtime.SignalsConsumer(publisher=publisher, dead_letters=InMemoryDeadLetterSink(),
                                       metrics=_metrics(), documents=stores(), interval="1m",
                                       factory=lambda: runtime.signal_handler_from_settings(ENV))

    a, b = instance(out_a), instance(out_b)
    p0, p1 = _batches(btc, "0"), _batches(eth, "1")
    for i, (b0, b1) in enumerate(zip(p0, p1, strict=True)):
        # Ownership moves every 4 batches: A holds p0 and B p1, then the other way round.
        first, second = (a, b) if (i // 4) % 2 == 0 else (b, a)
        runtime.run(first.processor, b0)
        runtime.run(second.processor, b1)
    published = out_a.events(topology.SIGNALS.name) + out_b.events(topology.SIGNALS.name)
    got = {sym: sorted((s for s in published if s.symbol == sym), key=lambda s: s.event_time)  # type: ignore[attr-defined]
           for sym in ("BTCUSDT", "ETHUSDT")}
    assert got["BTCUSDT"] == uninterrupted(btc)
    assert got["ETHUSDT"] == uninterrupted(eth)
    assert len(published) == len(uninterrupted(btc)) + len(uninterrupted(eth))  # no output twice
    assert a.processor.partition_states is not None and a.processor.partition_states.restores >= 4


def test_without_a_snapshot_a_new_owner_starts_cold_and_waits_for_warm_indicators(bars_1m: list[Bar]) -> None:
    klines = [b.to_kline() for b in bars_1m[:600]]
    publisher = InMemoryPublisher()
    consumer = runtime.SignalsConsumer(publisher=publisher, dead_letters=InMemoryDeadLetterSink(),
                                       metrics=_metrics(), documents=None, interval="1m",
                                       factory=lambda: runtime.signal_handler_from_settings(ENV))
    for batch in _batches(klines[300:]):
        runtime.run(consumer.processor, batch)
    first = publisher.events(topology.SIGNALS.name)[0]
    assert first.event_time >= klines[300 + 20 - 1].close_time  # no signal before slow=20 bars


def test_risk_after_a_takeover_remembers_its_rate_windows(stores: Stores) -> None:
    """A second BUY 10 s after the first, with one order per symbol a minute: the instance that
    took the partition over refuses it from the restored rate window; one with no saved state
    (documents None, the control) approves it."""
    from shared.events import Signal
    from shared.pipeline.risk import RiskHandler
    from shared.portfolio import AccountSnapshot
    from shared.risk import RiskConfig, RiskEngine
    from tests.factories import T0, kline, signal

    flat = AccountSnapshot(cash=10_000.0, equity=10_000.0, peak_equity=10_000.0, day_start_equity=10_000.0,
                           realized_pnl=0.0, positions={}, consecutive_losses=0, time=T0)

    def handler() -> RiskHandler:
        return RiskHandler(RiskEngine(RiskConfig(max_orders_per_minute_per_symbol=1)), lambda: flat)

    def consumer(docs: DocumentStore | None, out: InMemoryPublisher) -> runtime.RiskConsumer:
        return runtime.RiskConsumer(publisher=out, dead_letters=InMemoryDeadLetterSink(), metrics=_metrics(),
                                    documents=docs, factory=handler)

    first = signal(kline(T0))
    second = Signal.create(symbol="BTCUSDT", strategy="sma_cross", side=first.side, price=7201.0,
                           bar_open_time=T0 + 10_000, bar_close_time=T0 + 69_999,
                           market_event_id="e" * 32, correlation_id="c" * 32)
    out_a, out_b, out_cold = InMemoryPublisher(), InMemoryPublisher(), InMemoryPublisher()
    runtime.run(consumer(stores(), out_a).processor, host_batch([first], first_sequence=0))
    assert len(out_a.events(topology.ORDERS.name)) == 1
    runtime.run(consumer(stores(), out_b).processor, host_batch([second], first_sequence=1))
    assert out_b.events(topology.ORDERS.name) == []  # the restored window holds the first order
    runtime.run(consumer(None, out_cold).processor, host_batch([second], first_sequence=1))
    assert len(out_cold.events(topology.ORDERS.name)) == 1  # a cold engine would have sent it
