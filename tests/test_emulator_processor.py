"""The SDK's event processor against the emulator with `BlobCheckpointStore` on Azurite: checkpoints
resume exactly after the checkpoint, two consumers balance the partitions, one takes over when the
other stops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.storage.blob import BlobServiceClient

from emulator import BackgroundEmulator, HubConfig
from tests.emulator_support import config, wait_readers

pytestmark = pytest.mark.azurite
from tests.test_azurite_storage import AZURITE_BLOB as AZURITE  # noqa: E402


@pytest.fixture
def container() -> Iterator[str]:
    name = f"emu-ckpt-{uuid.uuid4().hex[:12]}"
    service = BlobServiceClient.from_connection_string(AZURITE)
    service.create_container(name)
    yield name
    service.delete_container(name)


@pytest.fixture(scope="module")
def emu() -> Iterator[BackgroundEmulator]:
    with BackgroundEmulator(config(HubConfig("p2", 2, ("$Default", "app")), HubConfig("p4", 4, ("$Default", "app"))),
                            port=0, health_port=0) as e:
        yield e


async def _send(cs: str, per_partition: dict[str, list[str]]) -> None:
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        for pid, bodies in per_partition.items():
            batch = await producer.create_batch(partition_id=pid)
            for b in bodies:
                batch.add(EventData(b))
            await producer.send_batch(batch)


def _consumer(cs: str, container: str, **kwargs: Any) -> EventHubConsumerClient:
    store = BlobCheckpointStore.from_connection_string(AZURITE, container)
    return EventHubConsumerClient.from_connection_string(cs, consumer_group="app", checkpoint_store=store,
                                                         load_balancing_interval=0.5,
                                                         partition_ownership_expiration_interval=2.5, **kwargs)


async def _until(pred: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def test_restart_resumes_exactly_after_the_checkpoint(emu, container) -> None:
    cs = emu.connection_string("p2")
    first = {pid: [f"{pid}-{i}" for i in range(10)] for pid in "01"}

    async def main() -> tuple[list[str], list[str]]:
        await _send(cs, first)
        seen: list[str] = []
        client = _consumer(cs, container)

        async def on_event(ctx: Any, ev: Any) -> None:
            body = ev.body_as_str()
            seen.append(body)
            if int(body.split("-")[1]) < 6:  # checkpoint the first six of each partition, not the rest
                await ctx.update_checkpoint(ev)

        task = asyncio.create_task(client.receive(on_event=on_event, starting_position="-1"))
        await _until(lambda: len(seen) >= 20)
        await client.close()
        await task
        await _send(cs, {pid: [f"{pid}-{i}" for i in range(10, 12)] for pid in "01"})
        resumed: list[str] = []
        client = _consumer(cs, container)

        async def on_event2(ctx: Any, ev: Any) -> None:
            resumed.append(ev.body_as_str())

        task = asyncio.create_task(client.receive(on_event=on_event2, starting_position="-1"))
        await _until(lambda: len(resumed) >= 12)
        await asyncio.sleep(0.5)
        await client.close()
        await task
        return seen, resumed

    seen, resumed = asyncio.run(main())
    assert sorted(seen) == sorted(b for v in first.values() for b in v)
    # restarted after checkpoints at x-5: x-6 .. x-11, each once, in order per partition
    for pid in "01":
        assert [r for r in resumed if r.startswith(f"{pid}-")] == [f"{pid}-{i}" for i in range(6, 12)]
    assert len(resumed) == 12


def test_two_consumers_balance_and_one_takes_over(emu, container) -> None:
    cs = emu.connection_string("p4")

    async def main() -> None:
        owned: dict[str, set[str]] = {"a": set(), "b": set()}
        got: dict[str, list[str]] = {"a": [], "b": []}

        def handlers(name: str) -> dict[str, Any]:
            async def on_event(ctx: Any, ev: Any) -> None:
                got[name].append(ev.body_as_str())

            async def on_init(ctx: Any) -> None:
                owned[name].add(ctx.partition_id)

            async def on_close(ctx: Any, reason: Any) -> None:
                owned[name].discard(ctx.partition_id)

            return dict(on_event=on_event, on_partition_initialize=on_init, on_partition_close=on_close,
                        starting_position="@latest")

        a, b = _consumer(cs, container), _consumer(cs, container)
        ta = asyncio.create_task(a.receive(**handlers("a")))
        tb = asyncio.create_task(b.receive(**handlers("b")))
        await _until(lambda: len(owned["a"]) == 2 and len(owned["b"]) == 2 and not owned["a"] & owned["b"])
        await asyncio.to_thread(wait_readers, emu, "p4", "app", 4)  # both receivers attached before sending
        await _send(cs, {pid: [f"one-{pid}"] for pid in "0123"})
        await _until(lambda: len(got["a"]) + len(got["b"]) == 4)
        assert sorted(got["a"]) == sorted(f"one-{p}" for p in owned["a"])
        await b.close()
        await tb
        await _until(lambda: len(owned["a"]) == 4)
        await asyncio.to_thread(wait_readers, emu, "p4", "app", 4)
        await _send(cs, {pid: [f"two-{pid}"] for pid in "0123"})
        await _until(lambda: sum(g.startswith("two-") for g in got["a"]) == 4)
        await a.close()
        await ta
        assert not any(g.startswith("two-") for g in got["b"])

    asyncio.run(main())
