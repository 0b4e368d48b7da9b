"""Trigger batches exactly as the Functions host hands them to a Python cardinality=many trigger.

The host sends the bodies as `collection_bytes` and the per-event system and application
properties in the trigger metadata (`SystemPropertiesArray`, `PropertiesArray`, one entry per
event, and `PartitionContext`); the real `azure.functions` Event Hubs converter turns that into
the `func.EventHubEvent` list the function receives. Tests build batches through that converter
rather than constructing events by hand, so per-event properties arrive where they do in Azure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventhub import EventHubTriggerConverter

from shared.adapters.publisher import PROP_EVENT_TYPE, PROP_SCHEMA_VERSION
from shared.events import Event, encode


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def wire_properties(event: Event, *, replay: bool = True, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The application properties our publisher sets, plus `replay` for replayed traffic."""
    props: dict[str, Any] = {PROP_EVENT_TYPE: event.type, PROP_SCHEMA_VERSION: event.schema_version}  # type: ignore[attr-defined]
    if replay:
        props["replay"] = "true"
    if extra:
        props.update(extra)
    return props


def host_batch(items: Sequence[Event | bytes], *, partition_id: str = "0", first_sequence: int = 0,
               properties: Sequence[Mapping[str, Any]] | None = None, replay: bool = True,
               enqueued_ms: Sequence[int] | None = None, partition_key: str | None = None) -> list[func.EventHubEvent]:
    """Decode a host-shaped batch through the worker's converter. Events get the publisher's
    properties (and `replay`); raw bytes get `properties[i]` or none, and `partition_key`."""
    bodies: list[bytes] = []
    props: list[Mapping[str, Any]] = []
    sys_props: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, bytes):
            bodies.append(item)
            prop: Mapping[str, Any] = properties[i] if properties is not None else {}
            key = partition_key
            t = enqueued_ms[i] if enqueued_ms is not None else 1_577_836_800_000
        else:
            bodies.append(encode(item))
            prop = properties[i] if properties is not None else wire_properties(item, replay=replay)
            key = getattr(item, "symbol", None)
            t = enqueued_ms[i] if enqueued_ms is not None else item.event_time
        props.append(prop)
        seq = first_sequence + i
        sys_props.append({"SequenceNumber": seq, "Offset": 4096 * seq, "PartitionKey": key,
                          "EnqueuedTimeUtc": _iso(t)})
    metadata = {
        "SystemPropertiesArray": meta.Datum(json.dumps(sys_props), "json"),
        "PropertiesArray": meta.Datum(json.dumps(list(props)), "json"),
        "PartitionContext": meta.Datum(json.dumps({"EventHubName": "hub", "ConsumerGroup": "group",
                                                   "PartitionId": partition_id}), "json"),
    }
    data = meta.Datum(SimpleNamespace(bytes=bodies), "collection_bytes")
    events: list[func.EventHubEvent] = EventHubTriggerConverter.decode(data, trigger_metadata=metadata)
    return events


_FUNCTIONS: dict[str, Any] = {}


def registered() -> dict[str, Any]:
    """The app's functions by name, as the worker indexes them. FunctionApp.get_functions() may
    be called only once per app object, so every test module reads them through this cache."""
    if not _FUNCTIONS:
        import function_app

        _FUNCTIONS.update({f.get_function_name() or "": f for f in function_app.app.get_functions()})
    return _FUNCTIONS


def trigger(name: str) -> Any:
    """The registered function's own Python callable."""
    return registered()[name].get_user_function()
