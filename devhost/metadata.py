"""Received Event Hubs events -> `azure.functions.EventHubEvent`, the way the Python worker gets them.

The host sends a batch as a `collection_bytes` datum plus trigger metadata (`PartitionContext`,
`SystemPropertiesArray`, `PropertiesArray`, `SequenceNumberArray`, ...); the worker turns it into
events with azure-functions' `EventHubTriggerConverter`. This module builds that datum and metadata
and calls the same converter, so a function sees what it would see under the real host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

import azure.functions as func
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter


class Received(NamedTuple):
    """One received event, transport-neutral (the SDK's EventData carries the same)."""

    body: bytes
    sequence_number: int
    offset: str
    enqueued_time: datetime
    partition_key: str | None = None
    properties: Mapping[str, Any] = {}


class PartitionInfo(NamedTuple):
    namespace: str
    hub: str
    consumer_group: str
    partition_id: str


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def from_event_data(event: Any) -> Received:
    """From an azure-eventhub `EventData` as a consumer receives it (property keys arrive as bytes)."""
    props = {str(_text(k)): _jsonable(v) for k, v in (event.properties or {}).items()}
    return Received(body=b"".join(event.body) if not isinstance(event.body, bytes) else event.body,
                    sequence_number=int(event.sequence_number), offset=str(event.offset),
                    enqueued_time=event.enqueued_time, partition_key=_text(event.partition_key),
                    properties=props)


def _jsonable(value: Any) -> Any:
    value = _text(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _system(r: Received) -> dict[str, Any]:
    return {"SequenceNumber": r.sequence_number, "Offset": r.offset, "PartitionKey": r.partition_key,
            "EnqueuedTimeUtc": _iso(r.enqueued_time)}


def trigger_metadata(batch: Sequence[Received], partition: PartitionInfo) -> dict[str, meta.Datum]:
    """The metadata the host sends with a MANY-cardinality batch."""
    def js(value: Any) -> meta.Datum:
        return meta.Datum(json.dumps(value), "json")

    return {
        "PartitionContext": js({"FullyQualifiedNamespace": partition.namespace, "EventHubName": partition.hub,
                                "ConsumerGroup": partition.consumer_group, "PartitionId": partition.partition_id}),
        "SystemPropertiesArray": js([_system(r) for r in batch]),
        "PropertiesArray": js([dict(r.properties) for r in batch]),
        "SequenceNumberArray": js([r.sequence_number for r in batch]),
        "OffsetArray": js([r.offset for r in batch]),
        "PartitionKeyArray": js([r.partition_key for r in batch]),
        "EnqueuedTimeUtcArray": js([_iso(r.enqueued_time) for r in batch]),
    }


def to_events(batch: Sequence[Received], partition: PartitionInfo) -> list[func.EventHubEvent]:
    """A MANY-cardinality batch as the worker hands it to the function."""
    data = meta.Datum(SimpleNamespace(bytes=[r.body for r in batch]), "collection_bytes")
    events = EventHubTriggerConverter.decode(data, trigger_metadata=trigger_metadata(batch, partition))
    assert isinstance(events, list)
    return events


def to_event(r: Received, partition: PartitionInfo) -> func.EventHubEvent:
    """One event for a ONE-cardinality trigger."""
    md = {"PartitionContext": meta.Datum(json.dumps({
              "FullyQualifiedNamespace": partition.namespace, "EventHubName": partition.hub,
              "ConsumerGroup": partition.consumer_group, "PartitionId": partition.partition_id}), "json"),
          "SystemProperties": meta.Datum(json.dumps(_system(r)), "json"),
          "Properties": meta.Datum(json.dumps(dict(r.properties)), "json"),
          "EnqueuedTimeUtc": meta.Datum(_iso(r.enqueued_time), "string"),
          "SequenceNumber": meta.Datum(r.sequence_number, "int"),
          "Offset": meta.Datum(r.offset, "string")}
    if r.partition_key is not None:
        md["PartitionKey"] = meta.Datum(r.partition_key, "string")
    event = EventHubTriggerConverter.decode(meta.Datum(r.body, "bytes"), trigger_metadata=md)
    assert not isinstance(event, list)
    return event
