"""The one topology: every hub is keyed by symbol, every consumer group is known."""

from __future__ import annotations

import pytest

from shared import topology


def test_pipeline_hubs_and_their_consumers() -> None:
    assert list(topology.HUBS) == ["market-data", "signals", "orders", "executions"]
    assert topology.consumer_group("market-data", "signals") == "signals"
    assert topology.consumer_group("signals", "risk") == "risk"
    assert topology.consumer_group("orders", "executor") == "executor"
    assert topology.consumer_group("executions", "positions") == "positions"


def test_every_hub_is_partitioned_by_symbol() -> None:
    for hub in topology.HUBS.values():
        assert hub.partition_key == "symbol"
        assert 1 <= hub.partitions <= 32


def test_each_stage_produces_what_the_next_consumes() -> None:
    producers = [h.producer for h in topology.HUBS.values()]
    consumers = [h.consumer_groups[0] for h in topology.HUBS.values()]
    assert producers[1:] == consumers[:-1]


def test_typos_fail_loudly() -> None:
    with pytest.raises(KeyError, match="unknown hub"):
        topology.hub("signal")
    with pytest.raises(KeyError, match="does not consume"):
        topology.consumer_group("orders", "risk")
