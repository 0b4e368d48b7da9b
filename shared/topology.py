"""The one messaging topology: every hub, consumer group, partition count and partition key.

Function bindings, Terraform, Bicep, Helm values and the local bus all read this module or are
tested against it, so a renamed hub cannot silently split the pipeline. The partition key is the
symbol on every hub: Event Hubs keeps order only within a partition, and per-symbol order is what
the strategies and the executor rely on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hub:
    """One Event Hub: who produces into it, who consumes it, and how it is partitioned."""

    name: str
    partitions: int
    consumer_groups: tuple[str, ...]
    producer: str
    partition_key: str = "symbol"
    retention_hours: int = 24


# The executor reads market data too (paper fills, and layer 2's price band and staleness checks),
# and so does positions (marks for unrealized PnL and equity).
MARKET_DATA = Hub("market-data", partitions=4, consumer_groups=("signals", "executor", "positions"),
                  producer="ingestor")
SIGNALS = Hub("signals", partitions=4, consumer_groups=("risk",), producer="signals")
ORDERS = Hub("orders", partitions=4, consumer_groups=("executor",), producer="risk")
EXECUTIONS = Hub("executions", partitions=4, consumer_groups=("positions",), producer="executor")

HUBS: dict[str, Hub] = {h.name: h for h in (MARKET_DATA, SIGNALS, ORDERS, EXECUTIONS)}

# App setting that holds the Event Hubs namespace connection (identity-based in Azure:
# EVENTHUB__fullyQualifiedNamespace). The Functions bindings and the publisher read the same name.
EVENTHUB_CONNECTION_SETTING = "EVENTHUB"
# Blob container for events that could not be processed, with the reason. Never dropped silently.
DEAD_LETTER_CONTAINER = "dead-letter"
# Blob container the Event Hubs checkpoint store uses (executor and replay consumers).
CHECKPOINT_CONTAINER = "checkpoints"
# Blob container of the shared documents (account snapshot, trading state, per-partition state).
STATE_CONTAINER = "marketflow-state"


def hub(name: str) -> Hub:
    """Look a hub up by name, failing loudly on a typo rather than publishing into nowhere."""
    try:
        return HUBS[name]
    except KeyError:
        raise KeyError(f"unknown hub {name!r}; known hubs: {sorted(HUBS)}") from None


def consumer_group(hub_name: str, consumer: str) -> str:
    """The consumer group `consumer` reads `hub_name` with; raises if it is not in the topology."""
    groups = hub(hub_name).consumer_groups
    if consumer not in groups:
        raise KeyError(f"{consumer!r} does not consume {hub_name!r}; its groups are {groups}")
    return consumer
