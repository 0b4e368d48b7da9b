"""The emulator against the stock azure-eventhub SDK (the oracle): produce, consume, route, properties."""

from __future__ import annotations

import asyncio
import datetime as dt

from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub._buffered_producer._partition_resolver import PartitionResolver

from tests.emulator_support import HUB, emu, receive

__all__ = ["emu"]


def _send(cs: str, bodies: list[str], **batch_kwargs: object) -> None:
    with EventHubProducerClient.from_connection_string(cs) as producer:
        batch = producer.create_batch(**batch_kwargs)
        for b in bodies:
            batch.add(EventData(b))
        producer.send_batch(batch)


def test_hub_and_partition_properties(emu):
    cs = emu.connection_string(HUB)
    with EventHubProducerClient.from_connection_string(cs) as producer:
        props = producer.get_eventhub_properties()
        assert props["eventhub_name"] == HUB
        assert props["partition_ids"] == ["0", "1", "2", "3"]
        assert producer.get_partition_ids() == ["0", "1", "2", "3"]
        before = producer.get_partition_properties("3")
        batch = producer.create_batch(partition_id="3")
        batch.add(EventData("a"))
        batch.add(EventData("b"))
        producer.send_batch(batch)
        after = producer.get_partition_properties("3")
    assert after["id"] == "3" and after["eventhub_name"] == HUB
    assert after["is_empty"] is False
    assert after["last_enqueued_sequence_number"] == before["last_enqueued_sequence_number"] + 2
    assert after["last_enqueued_time_utc"] > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    events = receive(cs, after["last_enqueued_sequence_number"] + 1, partition_id="3")
    assert events[-1].offset == after["last_enqueued_offset"]
    assert [e.body_as_str() for e in events[-2:]] == ["a", "b"]


def test_partition_key_routes_as_the_sdk_resolver_and_keeps_order(emu):
    cs = emu.connection_string("keys")
    keys = [f"SYM{i}USDT" for i in range(12)]
    with EventHubProducerClient.from_connection_string(cs) as producer:
        for round_ in range(5):
            for k in keys:
                batch = producer.create_batch(partition_key=k)
                batch.add(EventData(f"{k}:{round_}"))
                producer.send_batch(batch)
    resolver = PartitionResolver(["0", "1", "2", "3"])
    expected = {k: resolver.get_partition_id_by_partition_key(k) for k in keys}
    for pid in "0123":
        mine = [k for k in keys if expected[k] == pid]
        events = receive(cs, 5 * len(mine), partition_id=pid, timeout=10) if mine else []
        assert len(events) == 5 * len(mine)
        per_key: dict[str, list[int]] = {}
        for e in events:
            key = e.partition_key.decode()
            assert e.system_properties[b"x-opt-partition-key"] == e.partition_key
            assert e.body_as_str().startswith(key + ":")
            per_key.setdefault(key, []).append(int(e.body_as_str().split(":")[1]))
        assert per_key == {k: [0, 1, 2, 3, 4] for k in mine}


def test_annotations_properties_and_sequence(emu):
    cs = emu.connection_string("h1")
    with EventHubProducerClient.from_connection_string(cs) as producer:
        batch = producer.create_batch()
        for i in range(3):
            ev = EventData(b"\x00\x01binary" + bytes([i]))
            ev.properties = {"type": "Bar", "n": i, "f": 1.5}
            ev.message_id = f"id-{i}"
            ev.content_type = "application/json"
            ev.correlation_id = "corr"
            batch.add(ev)
        producer.send_batch(batch)
    events = receive(cs, 3, partition_id="0")
    assert [e.sequence_number for e in events] == [0, 1, 2]
    offsets = [int(e.offset) for e in events]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3
    assert len({e.enqueued_time for e in events}) == 1  # one batch is enqueued at once
    for i, e in enumerate(events):
        assert b"".join(e.body) == b"\x00\x01binary" + bytes([i])
        assert e.properties == {b"type": b"Bar", b"n": i, b"f": 1.5}
        assert e.message_id == f"id-{i}"
        assert e.content_type == "application/json"
        assert e.correlation_id == "corr"
        assert e.partition_key is None


def test_async_producer_and_consumer(emu):
    from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient

    cs = emu.connection_string(HUB)

    async def main() -> list[str]:
        async with EventHubProducerClient.from_connection_string(cs) as producer:
            for part in "01":
                batch = await producer.create_batch(partition_id=part)
                for i in range(50):
                    batch.add(EventData(f"async-{part}-{i}"))
                await producer.send_batch(batch)
        got: list[str] = []
        done = asyncio.Event()
        consumer = EventHubConsumerClient.from_connection_string(cs, consumer_group="cg1", load_balancing_interval=0.5)

        async def on_event(ctx, ev):
            if ev.body_as_str().startswith("async-"):
                got.append(ev.body_as_str())
            if len(got) >= 100:
                done.set()

        task = asyncio.create_task(consumer.receive(on_event=on_event, starting_position="-1"))
        await asyncio.wait_for(done.wait(), 20)
        await consumer.close()
        await task
        return got

    got = asyncio.run(main())
    assert sorted(got) == sorted(f"async-{p}-{i}" for p in "01" for i in range(50))
    for p in "01":
        mine = [g for g in got if g.startswith(f"async-{p}-")]
        assert mine == [f"async-{p}-{i}" for i in range(50)]
