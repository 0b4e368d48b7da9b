"""A replica displaced by a higher owner level stops: the real SDK consumers on the repo's Event
Hubs emulator (which enforces `com.microsoft:epoch` as Event Hubs does).

The scenario the owner level guards: replica A lost touch with storage (it cannot see that its
lease and partition ownership lapsed) but still holds its Event Hubs links; replica B took the
lease (a higher epoch) and claimed the partitions. Here B checkpoints to another container, so
it claims every partition at once while A's links are open; the service closes A's receivers
(`amqp:link:stolen`), and A stops (exit 1) without consuming anything after that.
"""

from __future__ import annotations

import asyncio
import functools
import uuid

import pytest

from aks_executor.app import ExecutorRuntime, Source
from aks_executor.main import consumer, ensure_checkpoint_container
from aks_executor.metrics import ExecutorMetrics
from aks_executor.service import ExecutorService
from emulator import BackgroundEmulator, from_hubs
from shared import topology
from shared.adapters.deadletter import InMemoryDeadLetterSink
from shared.adapters.lease import InMemoryLease, LeaseKeeper
from shared.adapters.publisher import InMemoryPublisher
from shared.risk import RiskConfig
from tests.test_executor_emulator import AZURITE

pytestmark = pytest.mark.azurite


def runtime(container: str, epoch: int) -> ExecutorRuntime:
    service = ExecutorService(publisher=InMemoryPublisher(), dead_letters=InMemoryDeadLetterSink(), cash=10_000.0,
                              risk_config=RiskConfig.replay())
    store = InMemoryLease.Store()
    store.epoch = epoch - 1  # each replica believes it holds the lease, at its own epoch
    return ExecutorRuntime(
        sources=[Source(topology.ORDERS.name, service.orders)],
        keeper=LeaseKeeper(InMemoryLease(store)), metrics=ExecutorMetrics(), grace_s=10.0,
        consumers=functools.partial(consumer, load_balancing_s=1.0, container=container))


def test_a_higher_owner_level_displaces_the_running_replica_which_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    with BackgroundEmulator(from_hubs(topology.HUBS.values()), port=0, health_port=0) as emu:
        monkeypatch.setenv("EVENTHUB", emu.connection_string())
        monkeypatch.setenv("CHECKPOINT_STORAGE", AZURITE)
        tag = uuid.uuid4().hex[:10]

        async def scenario() -> None:
            for c in (f"ckpt-a-{tag}", f"ckpt-b-{tag}"):
                await ensure_checkpoint_container(c)
            a, b = runtime(f"ckpt-a-{tag}", 1), runtime(f"ckpt-b-{tag}", 2)
            running_a = asyncio.create_task(a.run())
            for _ in range(300):
                if a.sources[0].partitions == {"0", "1", "2", "3"}:
                    break
                await asyncio.sleep(0.05)
            assert a.sources[0].partitions == {"0", "1", "2", "3"}
            running_b = asyncio.create_task(b.run())
            status_a = await asyncio.wait_for(running_a, 30.0)
            assert status_a == 1 and a.displaced.is_set()
            assert a.stop_reason == "displaced by a higher owner level"
            assert not b.displaced.is_set() and not running_b.done()
            b._request_stop("test over")
            assert await asyncio.wait_for(running_b, 15.0) == 0

        asyncio.run(scenario())
