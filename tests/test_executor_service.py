"""The AKS executor runs the same executor core as the replay: same reports from the same inputs."""

from __future__ import annotations

import pytest

from aks_executor.service import ExecutorService
from shared import topology
from shared.adapters.deadletter import InMemoryDeadLetterSink
from shared.adapters.processing import Delivery
from shared.adapters.publisher import InMemoryPublisher
from shared.data import read_klines
from shared.events import ExecutionReport, OrderStatus, encode
from shared.pipeline.replay import run_replay
from shared.risk import RiskConfig
from shared.samples import btcusdt_1m_paths


@pytest.fixture(scope="module")
def bars():
    return read_klines(btcusdt_1m_paths()[:1]).bars


def service(publisher: InMemoryPublisher, dead: InMemoryDeadLetterSink) -> ExecutorService:
    return ExecutorService(publisher=publisher, dead_letters=dead, cash=10_000.0, commission=0.002,
                           risk_config=RiskConfig.replay(), clock=lambda intent: intent.event_time)


def test_hub_fed_executor_publishes_exactly_the_replays_reports(bars) -> None:
    replay = run_replay(bars, "sma_cross", {"fast": 10, "slow": 20}, cash=10_000.0, commission=0.002)
    intents_at: dict[int, list] = {}
    for intent in replay.intents:
        intents_at.setdefault(intent.event_time, []).append(intent)
    publisher, dead = InMemoryPublisher(), InMemoryDeadLetterSink()
    svc = service(publisher, dead)
    for seq, bar in enumerate(bars):
        svc.market.process([Delivery(body=encode(bar.to_kline()), partition_key=bar.symbol, sequence_number=seq)])
        batch = [Delivery(body=encode(i), partition_key=i.symbol) for i in intents_at.get(bar.close_time, [])]
        if batch:
            svc.orders.process(batch)
            svc.orders.process(batch)  # redelivered: no second order
    published = publisher.events(topology.EXECUTIONS.name)
    assert not dead.all()
    assert all(isinstance(r, ExecutionReport) for r in published)
    assert [r.event_id for r in published] == [r.event_id for r in replay.reports]
    assert published == replay.reports
    assert sum(1 for r in published if r.status is OrderStatus.FILLED) == 2 * len(replay.trades) + (
        1 if replay.open_position else 0)
    assert svc.book.snapshot_account().equity == pytest.approx(replay.final_equity, abs=1e-9)


def test_a_malformed_intent_is_dead_lettered_and_nothing_is_sent(bars) -> None:
    publisher, dead = InMemoryPublisher(), InMemoryDeadLetterSink()
    svc = service(publisher, dead)
    svc.orders.process([Delivery(body=b'{"type": "order_intent", "schema_version": 1}', partition_key="BTCUSDT")])
    (record,) = dead.all()
    assert record.hub == topology.ORDERS.name and record.field
    assert not publisher.events(topology.EXECUTIONS.name)
    assert not svc.broker.pending


def test_a_replayed_intent_is_checked_in_event_time_a_live_one_on_the_wall_clock(bars) -> None:
    """The `replay` property decides the last look's clock, as it does risk's: a 2020 intent
    replayed is judged at its own time and filled; the same intent arriving live is years old."""
    replay = run_replay(bars, "sma_cross", {"fast": 10, "slow": 20}, cash=10_000.0, commission=0.002)
    first = replay.intents[0]
    at = next(i for i, bar in enumerate(bars) if bar.close_time == first.event_time)

    def outcome(properties: dict[str, object]) -> tuple[list[ExecutionReport], list]:
        publisher, dead = InMemoryPublisher(), InMemoryDeadLetterSink()
        svc = ExecutorService(publisher=publisher, dead_letters=dead, cash=10_000.0, commission=0.002,
                              risk_config=RiskConfig())  # the service's own clock: wall time
        for seq, bar in enumerate(bars[:at + 1]):
            svc.market.process([Delivery(body=encode(bar.to_kline()), partition_key=bar.symbol, sequence_number=seq,
                                         properties=dict(properties))])
        svc.orders.process([Delivery(body=encode(first), partition_key=first.symbol, properties=dict(properties))])
        svc.market.process([Delivery(body=encode(bars[at + 1].to_kline()), partition_key=first.symbol,
                                     sequence_number=at + 1, properties=dict(properties))])
        return publisher.events(topology.EXECUTIONS.name), svc.engine.counters()

    replayed, _ = outcome({"replay": "up"})
    assert [r.status for r in replayed] == [OrderStatus.FILLED]
    live, counters = outcome({})
    assert not [r for r in live if r.status is OrderStatus.FILLED]
    assert counters["rejections_layer2"] == {"STALE_SIGNAL": 1}
