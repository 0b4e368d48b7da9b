"""Start positions, owner level and volume through the emulator, with the stock SDK as the oracle."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import EventHubError

from emulator import BackgroundEmulator, HubConfig
from tests.emulator_support import config, receive, wait_readers


def _fresh(emu: BackgroundEmulator, n: int) -> list[EventData]:
    """`n` events in partition 0 of `h1`, sent in three batches a little apart (distinct enqueued times)."""
    cs = emu.connection_string("h1")
    with EventHubProducerClient.from_connection_string(cs) as producer:
        for chunk in (range(0, n // 3), range(n // 3, 2 * n // 3), range(2 * n // 3, n)):
            batch = producer.create_batch()
            for i in chunk:
                batch.add(EventData(f"p{i}"))
            producer.send_batch(batch)
            time.sleep(0.02)
    return receive(cs, n, partition_id="0")


def test_every_start_position() -> None:
    with BackgroundEmulator(config(), port=0, health_port=0) as emu:
        cs = emu.connection_string("h1")
        events = _fresh(emu, 9)
        bodies = [e.body_as_str() for e in events]
        assert bodies == [f"p{i}" for i in range(9)]
        third = events[3]

        def start(pos, expected, inclusive=False):
            # receiving stops at the expected count: a start too early shows in the first bodies, one too
            # late in a short list
            got = receive(cs, len(expected), partition_id="0", starting_position=pos,
                          starting_position_inclusive=inclusive, timeout=10)
            return [e.body_as_str() for e in got] == expected

        t = third.enqueued_time  # the three batches were enqueued at three different times
        cases = [("-1", bodies, False), (third.offset, bodies[4:], False), (third.offset, bodies[3:], True),
                 (third.sequence_number, bodies[4:], False), (third.sequence_number, bodies[3:], True),
                 (t, bodies[6:], False), (t, bodies[3:], True), (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), bodies, False)]
        with ThreadPoolExecutor(len(cases)) as pool:  # independent receivers, run side by side
            results = list(pool.map(lambda c: start(c[0], c[1], inclusive=c[2]), cases))
        assert results == [True] * len(cases)
        # @latest: only what is sent after the receiver attached
        got: list[str] = []
        client = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")
        th = threading.Thread(target=client.receive, kwargs=dict(
            on_event=lambda ctx, ev: got.append(ev.body_as_str()), partition_id="0", starting_position="@latest"),
            daemon=True)
        th.start()
        wait_readers(emu, "h1", "$Default", 1)
        with EventHubProducerClient.from_connection_string(cs) as producer:
            producer.send_event(EventData("late"))
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        client.close()
        th.join(10)
        assert got == ["late"]


def test_ten_thousand_events_round_trip_none_lost_or_duplicated() -> None:
    n = 10_000
    with BackgroundEmulator(config(HubConfig("vol", 4, ("$Default",))), port=0, health_port=0) as emu:
        cs = emu.connection_string("vol")
        ids = [str(uuid.uuid4()) for _ in range(n)]
        symbols = [f"S{i % 10}" for i in range(n)]
        with EventHubProducerClient.from_connection_string(cs) as producer:
            for sym in sorted(set(symbols)):
                batch = producer.create_batch(partition_key=sym)
                for i, s in enumerate(symbols):
                    if s != sym:
                        continue
                    ev = EventData(f"{sym}:{i}")
                    ev.message_id = ids[i]
                    try:
                        batch.add(ev)
                    except ValueError:
                        producer.send_batch(batch)
                        batch = producer.create_batch(partition_key=sym)
                        batch.add(ev)
                producer.send_batch(batch)
        got = receive(cs, n, timeout=60, prefetch=1000)
        assert len(got) == n
        assert sorted(e.message_id for e in got) == sorted(ids)
        per_key: dict[str, list[int]] = {}
        for e in got:
            sym, i = e.body_as_str().split(":")
            per_key.setdefault(sym, []).append(int(i))
        assert all(v == sorted(v) for v in per_key.values())


def test_a_higher_owner_level_displaces_a_lower_one() -> None:
    with BackgroundEmulator(config(), port=0, health_port=0) as emu:
        cs = emu.connection_string("h1")
        errors: list[Exception] = []
        low: list[str] = []
        high: list[str] = []
        c1 = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")
        c2 = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")
        t1 = threading.Thread(target=c1.receive, kwargs=dict(
            on_event=lambda ctx, ev: low.append(ev.body_as_str()), on_error=lambda ctx, err: errors.append(err),
            partition_id="0", owner_level=1, starting_position="-1"), daemon=True)
        t1.start()
        wait_readers(emu, "h1", "$Default", 1)
        with EventHubProducerClient.from_connection_string(cs) as producer:
            producer.send_event(EventData("first"))
            deadline = time.monotonic() + 10
            while not low and time.monotonic() < deadline:
                time.sleep(0.05)
            assert low == ["first"]
            t2 = threading.Thread(target=c2.receive, kwargs=dict(
                on_event=lambda ctx, ev: high.append(ev.body_as_str()), partition_id="0", owner_level=2,
                starting_position="@latest"), daemon=True)
            t2.start()
            deadline = time.monotonic() + 10
            while not errors and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            producer.send_event(EventData("second"))
            deadline = time.monotonic() + 10
            while not high and time.monotonic() < deadline:
                time.sleep(0.05)
        c1.close()
        c2.close()
        t1.join(10)
        t2.join(10)
        assert high == ["second"]
        assert low == ["first"]
        assert errors and isinstance(errors[0], EventHubError), errors
        assert "epoch" in str(errors[0])


def test_last_enqueued_event_properties_when_the_receiver_asks() -> None:
    with BackgroundEmulator(config(), port=0, health_port=0) as emu:
        cs = emu.connection_string("h1")
        _fresh(emu, 6)
        with EventHubProducerClient.from_connection_string(cs) as producer:
            last = producer.get_partition_properties("0")
        seen: list[dict] = []
        receive(cs, 6, partition_id="0", track_last_enqueued_event_properties=True,
                on_event=lambda ctx, ev: seen.append(ctx.last_enqueued_event_properties))
        assert len(seen) == 6
        for props in seen:
            assert props["sequence_number"] == last["last_enqueued_sequence_number"]
            assert props["offset"] == last["last_enqueued_offset"]
            assert props["enqueued_time"] == last["last_enqueued_time_utc"]
            assert props["retrieval_time"] >= props["enqueued_time"]
