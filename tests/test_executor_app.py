"""The executor service's life in process: standby until the lease, owner level = epoch, probes
and metrics, SIGTERM drains and releases, a lost lease or a displacement stops it.

The consumers are `tests.executor_runtime.StrictConsumer` (no Event Hubs here); the process-level
tests (a real `python -m aks_executor`, the Blob lease on Azurite) are in test_executor_process.py.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from aks_executor.app import ExecutorRuntime, Source
from aks_executor.metrics import ExecutorMetrics
from aks_executor.service import ExecutorService
from shared import topology
from shared.adapters.deadletter import InMemoryDeadLetterSink
from shared.adapters.lease import InMemoryLease, LeaseKeeper
from shared.adapters.ops_http import HttpServer, build_app
from shared.adapters.publisher import InMemoryPublisher
from shared.events import ExecutionReport, Kline, OrderIntent, OrderStatus, Side, Signal
from shared.risk import RiskConfig
from tests.executor_runtime import Consumers

T0 = 1_577_836_800_000


def kline(open_time: int, price: float) -> Kline:
    return Kline.create(symbol="BTCUSDT", interval="1m", open_time=open_time, close_time=open_time + 59_999,
                        open=price, high=price + 5, low=price - 5, close=price, volume=3.0)


def intent(bar: Kline) -> OrderIntent:
    s = Signal.create(symbol="BTCUSDT", strategy="sma_cross", side=Side.BUY, price=bar.close,
                      bar_open_time=bar.open_time, bar_close_time=bar.close_time, market_event_id=bar.event_id,
                      correlation_id=bar.correlation_id)
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                       event_time=s.event_time, symbol=s.symbol, strategy=s.strategy, side=s.side,
                       quote_quantity=1000.0, reference_price=s.price, signal_id=s.event_id)


class Rig:
    def __init__(self, store: InMemoryLease.Store | None = None, grace_s: float = 5.0) -> None:
        self.publisher, self.dead = InMemoryPublisher(), InMemoryDeadLetterSink()
        self.metrics = ExecutorMetrics()
        self.service = ExecutorService(publisher=self.publisher, dead_letters=self.dead, cash=10_000.0,
                                       risk_config=RiskConfig.replay(), clock=lambda i: i.event_time,
                                       metrics=self.metrics)
        self.store = store or InMemoryLease.Store()
        self.keeper = LeaseKeeper(InMemoryLease(self.store), retry_every_s=0.02, renew_every_s=0.05)
        self.consumers = Consumers()
        self.runtime = ExecutorRuntime(
            sources=[Source(topology.ORDERS.name, self.service.orders),
                     Source(topology.MARKET_DATA.name, self.service.market)],
            keeper=self.keeper, consumers=self.consumers, metrics=self.metrics, grace_s=grace_s,
            readiness_extra={"not_banned": self.service.not_banned})
        app = build_app(self.metrics.registry, self.runtime.readiness, self.service.export_state)
        self.runtime.http = HttpServer(app, "127.0.0.1", 0)

    async def until(self, predicate, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.01)

    async def get(self, path: str) -> tuple[int, str]:
        assert self.runtime.http is not None
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{self.runtime.http.port}{path}") as resp:
            return resp.status, await resp.text()


def test_a_standby_consumes_nothing_until_it_holds_the_lease_then_trades_and_drains_on_stop() -> None:
    async def scenario() -> None:
        store = InMemoryLease.Store()
        store.holder, store.epoch = "another-replica", 6
        rig = Rig(store)
        running = asyncio.create_task(rig.runtime.run())
        await rig.until(lambda: rig.runtime.http is not None and rig.runtime.http.port != 0)
        status, body = await rig.get("/readyz")
        assert status == 503 and '"lease_held": false' in body
        assert (await rig.get("/healthz"))[0] == 200
        await asyncio.sleep(0.1)
        assert rig.consumers.made == {}  # standing by: no consumer exists

        store.holder = None  # the other replica released it
        await rig.until(lambda: len(rig.consumers.made) == 2)
        orders, market = rig.consumers.made[topology.ORDERS.name], rig.consumers.made[topology.MARKET_DATA.name]
        assert orders.owner_level == market.owner_level == 7 == orders.received_kwargs["owner_level"]
        await rig.until(lambda: rig.runtime.readiness.results()["consumer_connected"])
        status, body = await rig.get("/readyz")
        assert status == 200, body

        bar0, bar1 = kline(T0, 7200.0), kline(T0 + 60_000, 7210.0)
        market.send(bar0)
        await rig.until(lambda: len(market.checkpoints) == 1)
        order = intent(bar0)
        orders.send(order)
        orders.send(order)  # redelivered: no second order
        await rig.until(lambda: len(orders.checkpoints) == 2)
        market.send(bar1)
        await rig.until(lambda: len(market.checkpoints) == 2)
        (report,) = rig.publisher.events(topology.EXECUTIONS.name)
        assert isinstance(report, ExecutionReport) and report.status is OrderStatus.FILLED
        assert report.intent_id == order.event_id

        status, text = await rig.get("/metrics")
        assert status == 200
        assert 'marketflow_executor_orders_total{outcome="FILLED"} 1.0' in text
        assert 'marketflow_executor_trading_state{marketflow_executor_trading_state="ACTIVE"} 1.0' in text
        assert "marketflow_executor_lease_held 1.0" in text and "marketflow_executor_lease_epoch 7.0" in text
        # The redelivered intent stops at the batch loop's content-checked dedup.
        assert 'marketflow_executor_events_total{hub="orders",outcome="ok"} 1.0' in text
        assert 'marketflow_executor_events_total{hub="orders",outcome="duplicate"} 1.0' in text
        assert 'marketflow_executor_consumer_partitions{hub="orders"} 1.0' in text

        rig.runtime._request_stop("SIGTERM received")
        assert await asyncio.wait_for(running, 5.0) == 0
        assert orders.closed.is_set() and market.closed.is_set()
        assert store.holder is None  # released: a standby takes over without waiting

    asyncio.run(scenario())


def test_the_batch_in_hand_finishes_and_is_checkpointed_before_the_lease_is_released() -> None:
    async def scenario() -> None:
        rig = Rig()
        released_with: list[int] = []
        release = rig.keeper.lease.release

        async def record_release() -> None:
            released_with.append(len(rig.consumers.made[topology.MARKET_DATA.name].checkpoints))
            await release()

        rig.keeper.lease.release = record_release  # type: ignore[method-assign]
        slow_step = rig.service.market._step

        def slow(kl):
            import time
            time.sleep(0.3)  # a batch that is still running when SIGTERM arrives
            return slow_step(kl)

        rig.service.market._step = slow
        running = asyncio.create_task(rig.runtime.run())
        await rig.until(lambda: len(rig.consumers.made) == 2)
        market = rig.consumers.made[topology.MARKET_DATA.name]
        market.send(kline(T0, 7200.0))
        await asyncio.sleep(0.1)
        rig.runtime._request_stop("SIGTERM received")
        market.send(kline(T0 + 60_000, 7201.0))  # arrives while draining: not processed, not checkpointed
        assert await asyncio.wait_for(running, 5.0) == 0
        assert len(market.checkpoints) == 1 and released_with == [1]

    asyncio.run(scenario())


def test_a_replica_that_loses_its_lease_stops_consuming_and_exits_1() -> None:
    async def scenario() -> None:
        rig = Rig()
        running = asyncio.create_task(rig.runtime.run())
        await rig.until(lambda: len(rig.consumers.made) == 2)
        rig.store.holder = "a-newer-replica"  # e.g. our renewals stalled and it lapsed
        assert await asyncio.wait_for(running, 5.0) == 1
        assert rig.runtime.stop_reason == "the lease was lost"
        assert all(c.closed.is_set() for c in rig.consumers.made.values())
        assert rig.store.holder == "a-newer-replica"  # never released what is not ours

    asyncio.run(scenario())


def test_a_receiver_displaced_by_a_higher_owner_level_stops_the_replica() -> None:
    from azure.eventhub.exceptions import ConnectionLostError

    async def scenario() -> None:
        rig = Rig()
        running = asyncio.create_task(rig.runtime.run())
        await rig.until(lambda: len(rig.consumers.made) == 2)
        rig.consumers.made[topology.ORDERS.name].error = ConnectionLostError(
            "New receiver 'x' with higher epoch of '8' is created hence current receiver 'y' with epoch '7' is "
            "getting disconnected. Error condition: amqp:link:stolen")
        assert await asyncio.wait_for(running, 5.0) == 1
        assert rig.runtime.displaced.is_set()

    asyncio.run(scenario())


@pytest.mark.parametrize("stop_while", ["standby"])
def test_a_standby_stopped_before_it_ever_held_the_lease_exits_0(stop_while: str) -> None:
    async def scenario() -> None:
        store = InMemoryLease.Store()
        store.holder = "another-replica"
        rig = Rig(store)
        running = asyncio.create_task(rig.runtime.run())
        await asyncio.sleep(0.05)
        rig.runtime._request_stop("SIGTERM received")
        assert await asyncio.wait_for(running, 2.0) == 0
        assert rig.consumers.made == {} and store.holder == "another-replica"

    asyncio.run(scenario())
