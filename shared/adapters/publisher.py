"""Publishing events to the topology's hubs, partitioned by symbol.

The Python Event Hubs output binding cannot set a partition key, and per-symbol order is what
the strategies and the executor rely on, so every producer publishes through this module:
`EventHubPublisher` in Azure (azure-eventhub SDK, one producer client per hub per process) and
`InMemoryPublisher` in tests and in-process runs. Both refuse a hub that is not in the topology
and an event without a partition key, so a typo cannot publish into nowhere. Both add the
current span's W3C trace context (`traceparent`, `tracestate`) to what they publish unless the
caller's `properties` already carry one (shared.adapters.tracing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from shared import topology
from shared.events import Event

from .tracing import with_current_trace

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
# Application properties every published event carries, so consumers and dashboards can route
# or filter without parsing the body.
PROP_EVENT_TYPE = "marketflow.type"
PROP_SCHEMA_VERSION = "marketflow.schema_version"
# Klines also carry their interval, so a consumer of one interval skips the others undecoded.
PROP_INTERVAL = "marketflow.interval"


class Publisher(Protocol):
    """Sends events to one hub. Raises on failure: the caller must retry, never drop.
    `properties` are extra application properties for every event (a replay's `replay` mark)."""

    def publish(self, hub: str, events: Sequence[Event], properties: Mapping[str, str] | None = None) -> None: ...


class PublishError(RuntimeError):
    """Events could not be published. Not a bad event: the whole input batch must be retried."""


def partition_key_of(event: Event, hub: str) -> str:
    """The partition key of `event` on `hub` as the topology defines it (the symbol)."""
    field_name = topology.hub(hub).partition_key
    key = getattr(event, field_name, None)
    if not isinstance(key, str) or not key:
        raise ValueError(f"{type(event).__name__} {event.event_id} has no {field_name!r} to use as the "
                         f"partition key of hub {hub!r}")
    return key


def group_by_partition_key(hub: str, events: Sequence[Event]) -> dict[str, list[Event]]:
    """Events grouped by partition key, each group in input order (per-key order is what matters)."""
    topology.hub(hub)  # unknown hub: fail before anything is grouped or sent
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(partition_key_of(event, hub), []).append(event)
    return groups


class InMemoryPublisher:
    """Records what would have been published, per hub, with the partition key it would carry."""

    def __init__(self) -> None:
        self.published: dict[str, list[Event]] = {}
        self.partition_keys: dict[str, list[str]] = {}
        self.properties: dict[str, list[dict[str, str]]] = {}  # the extra properties of each event
        self.calls = 0

    def publish(self, hub: str, events: Sequence[Event], properties: Mapping[str, str] | None = None) -> None:
        groups = group_by_partition_key(hub, events)  # validates everything before recording
        properties = with_current_trace(properties)
        self.calls += 1
        for key, group in groups.items():
            self.published.setdefault(hub, []).extend(group)
            self.partition_keys.setdefault(hub, []).extend([key] * len(group))
            self.properties.setdefault(hub, []).extend(dict(properties or {}) for _ in group)

    def events(self, hub: str) -> list[Event]:
        return list(self.published.get(hub, ()))

    def clear(self) -> None:
        self.published.clear()
        self.partition_keys.clear()
        self.properties.clear()
