"""Publishers: topology validation, symbol partition keys, batching through the real SDK objects.

Event Hubs is out of reach here, so the EventHubPublisher gets a fake producer client whose
`create_batch` returns real `azure.eventhub.EventDataBatch` objects (same size accounting and
partition-key stamping as the service-bound ones) and whose `send_batch` records them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from azure.eventhub import EventData, EventDataBatch, EventHubProducerClient
from azure.eventhub.amqp import AmqpAnnotatedMessage

from shared import topology
from shared.adapters import ConfigurationError, EventHubPublisher, InMemoryPublisher, PublishError
from shared.adapters.publisher import CONTENT_TYPE, PROP_EVENT_TYPE, partition_key_of
from shared.events import Event, Kline, Side, Signal, encode

SECRET = "c2VjcmV0LWtleS1kby1ub3QtbG9n"


def signal(symbol: str, n: int, side: Side = Side.BUY) -> Signal:
    return Signal.create(symbol=symbol, strategy="sma_cross", side=side, price=100.0 + n,
                         bar_open_time=60_000 * n, bar_close_time=60_000 * n + 59_999,
                         market_event_id=Kline.make_id(symbol, "1m", 60_000 * n),
                         correlation_id=Kline.make_id(symbol, "1m", 60_000 * n))


class NoSymbol(Event):
    """An event type without a partition key field (none exists on the wire today)."""

    type: str = "no_symbol"


def no_symbol() -> NoSymbol:
    return NoSymbol(event_id="e" * 32, correlation_id="c" * 32, event_time=0)


class FakeProducer:
    """Stands in for EventHubProducerClient; batches are the SDK's own EventDataBatch."""

    def __init__(self, hub: str, max_size: int = 1_048_576, fail_on_send: int | None = None) -> None:
        self.hub = hub
        self.max_size = max_size
        self.fail_on_send = fail_on_send
        self.sent: list[EventDataBatch] = []
        self.sent_events: list[tuple[str, list[EventData]]] = []
        self.closed = False
        self._pending: dict[int, list[EventData | AmqpAnnotatedMessage]] = {}

    def create_batch(self, *, partition_key: str | None = None, **kwargs: Any) -> EventDataBatch:
        batch = EventDataBatch(max_size_in_bytes=self.max_size, partition_key=partition_key)
        real_add = batch.add
        bucket: list[EventData | AmqpAnnotatedMessage] = []

        def add(data: EventData | AmqpAnnotatedMessage) -> None:
            real_add(data)  # raises ValueError when full, exactly like the real batch
            bucket.append(data)

        batch.add = add  # type: ignore[method-assign,assignment]  # record what went into which batch
        self._pending[id(batch)] = bucket
        return batch

    def send_batch(self, event_data_batch: EventDataBatch, **kwargs: Any) -> None:
        if self.fail_on_send is not None and len(self.sent) == self.fail_on_send:
            raise ConnectionError("amqp link detached")
        self.sent.append(event_data_batch)
        key = event_data_batch._partition_key
        assert isinstance(key, str)
        datas = [d for d in self._pending.pop(id(event_data_batch)) if isinstance(d, EventData)]
        self.sent_events.append((key, datas))

    def close(self) -> None:
        self.closed = True


class Factory:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.clients: dict[str, FakeProducer] = {}
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, hub: str) -> FakeProducer:
        with self._lock:
            self.calls += 1
            client = self.clients[hub] = FakeProducer(hub, **self.kwargs)
            return client


# -- InMemoryPublisher ------------------------------------------------------------------------


def test_in_memory_records_per_hub_with_the_symbol_as_partition_key() -> None:
    pub = InMemoryPublisher()
    events = [signal("BTCUSDT", 1), signal("ETHUSDT", 1), signal("BTCUSDT", 2)]
    pub.publish("signals", events)
    assert pub.events("signals") == [events[0], events[2], events[1]]  # grouped, per-key order kept
    assert pub.partition_keys["signals"] == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
    assert pub.events("orders") == []


def test_in_memory_rejects_unknown_hubs_and_keyless_events_atomically() -> None:
    pub = InMemoryPublisher()
    with pytest.raises(KeyError, match="unknown hub"):
        pub.publish("signal", [signal("BTCUSDT", 1)])
    with pytest.raises(ValueError, match="partition key"):
        pub.publish("signals", [signal("BTCUSDT", 1), no_symbol()])
    assert pub.published == {}


def test_partition_key_is_the_topology_field() -> None:
    assert all(h.partition_key == "symbol" for h in topology.HUBS.values())
    assert partition_key_of(signal("SOLUSDT", 3), "signals") == "SOLUSDT"


# -- EventHubPublisher ------------------------------------------------------------------------


def test_events_are_grouped_by_symbol_into_keyed_batches() -> None:
    factory = Factory()
    pub = EventHubPublisher(factory)
    events = [signal("BTCUSDT", 1), signal("ETHUSDT", 1), signal("BTCUSDT", 2, Side.SELL),
              signal("ETHUSDT", 2, Side.SELL)]
    pub.publish("signals", events)

    client = factory.clients["signals"]
    assert [key for key, _ in client.sent_events] == ["BTCUSDT", "ETHUSDT"]
    by_key = {key: datas for key, datas in client.sent_events}
    assert [d.message_id for d in by_key["BTCUSDT"]] == [events[0].event_id, events[2].event_id]
    assert [d.message_id for d in by_key["ETHUSDT"]] == [events[1].event_id, events[3].event_id]
    originals = {e.event_id: e for e in events}
    for key, datas in client.sent_events:
        for data in datas:
            assert isinstance(data.message_id, str)
            event = originals[data.message_id]
            assert data.partition_key == key == event.symbol  # the SDK stamped the batch's key
            assert data.body_as_str() == encode(event).decode()
            assert data.content_type == CONTENT_TYPE
            assert data.correlation_id == event.correlation_id
            assert data.properties[PROP_EVENT_TYPE] == "signal"


def test_a_full_batch_is_sent_and_a_new_one_started() -> None:
    factory = Factory(max_size=1_400)  # room for a few signals per batch
    pub = EventHubPublisher(factory)
    events = [signal("BTCUSDT", n) for n in range(25)] + [signal("ETHUSDT", n) for n in range(7)]
    pub.publish("signals", events)
    client = factory.clients["signals"]
    assert len(client.sent) > 3
    assert all(len(b) > 0 and b.size_in_bytes <= 1_400 for b in client.sent)
    sent_ids = [d.message_id for _, datas in client.sent_events for d in datas]
    assert sent_ids == [e.event_id for e in events]  # each once, per-symbol order preserved
    for key, datas in client.sent_events:
        assert {d.partition_key for d in datas} == {key}


def test_an_event_too_large_for_an_empty_batch_is_an_error() -> None:
    pub = EventHubPublisher(Factory(max_size=120))
    with pytest.raises(PublishError, match="does not fit"):
        pub.publish("signals", [signal("BTCUSDT", 1)])


def test_send_failures_surface_as_publish_errors() -> None:
    pub = EventHubPublisher(Factory(fail_on_send=0))
    with pytest.raises(PublishError, match=r"hub 'orders'.*ConnectionError") as info:
        pub.publish("orders", [signal("BTCUSDT", 1)])
    assert isinstance(info.value.__cause__, ConnectionError)


def test_unknown_hub_or_keyless_event_is_refused_before_connecting() -> None:
    factory = Factory()
    pub = EventHubPublisher(factory)
    with pytest.raises(KeyError):
        pub.publish("order", [signal("BTCUSDT", 1)])
    with pytest.raises(ValueError, match="partition key"):
        pub.publish("orders", [no_symbol()])
    pub.publish("orders", [])
    assert factory.calls == 0


def test_one_producer_client_per_hub_per_process() -> None:
    factory = Factory()
    pub = EventHubPublisher(factory)
    threads = [threading.Thread(target=pub.publish, args=(hub, [signal("BTCUSDT", i)]))
               for i in range(8) for hub in ("signals", "orders")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pub.publish("signals", [signal("ETHUSDT", 1)])
    assert factory.calls == 2
    assert sorted(factory.clients) == ["orders", "signals"]
    pub.close()
    assert all(c.closed for c in factory.clients.values())


# -- settings ----------------------------------------------------------------------------------


def test_from_settings_with_a_connection_string_never_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    conn = f"Endpoint=sb://mf-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey={SECRET}"
    caplog.set_level(logging.DEBUG)
    pub = EventHubPublisher.from_settings(environ={"EVENTHUB": conn})
    client = pub._client("signals")
    try:
        assert isinstance(client, EventHubProducerClient)
        assert client.eventhub_name == "signals"
        assert client._address.hostname == "mf-test.servicebus.windows.net"
    finally:
        pub.close()
    assert SECRET not in caplog.text
    assert "EVENTHUB" in caplog.text


def test_from_settings_identity_based(caplog: pytest.LogCaptureFixture) -> None:
    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("no token is needed to construct a client")

    pub = EventHubPublisher.from_settings(
        environ={"EVENTHUB__fullyQualifiedNamespace": "mf-prod.servicebus.windows.net"},
        credential=Credential())
    client = pub._client("orders")
    try:
        assert isinstance(client, EventHubProducerClient)
        assert client.eventhub_name == "orders"
        assert client._address.hostname == "mf-prod.servicebus.windows.net"
    finally:
        pub.close()


def test_missing_settings_name_the_settings_not_values() -> None:
    with pytest.raises(ConfigurationError, match="EVENTHUB__fullyQualifiedNamespace"):
        EventHubPublisher.from_settings(environ={"OTHER": SECRET})
