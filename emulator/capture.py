"""Event Hubs Capture: each partition's events, per time or size window, as an Avro file in Capture's layout.

Files are `<dir>/<namespace>/<hub>/<partition>/<YYYY>/<MM>/<DD>/<HH>/<mm>/<ss>.avro` (Capture's default
name format, from the window's start in UTC), written with fastavro in Capture's schema: record
`Microsoft.ServiceBus.Messaging.EventData` with `SequenceNumber` (long), `Offset` (string),
`EnqueuedTimeUtc` (string, as Capture writes it: `M/d/yyyy h:mm:ss AM|PM`), `SystemProperties` and
`Properties` (maps of long, double, string or bytes) and `Body` (bytes). A file appears whole (written
aside, then renamed). Empty windows write nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from . import codec, messages
from .store import Hub, Namespace, Partition, StoredEvent

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "EventData",
    "namespace": "Microsoft.ServiceBus.Messaging",
    "fields": [
        {"name": "SequenceNumber", "type": "long"},
        {"name": "Offset", "type": "string"},
        {"name": "EnqueuedTimeUtc", "type": "string"},
        {"name": "SystemProperties", "type": {"type": "map", "values": ["long", "double", "string", "bytes"]}},
        {"name": "Properties", "type": {"type": "map", "values": ["long", "double", "string", "bytes"]}},
        {"name": "Body", "type": ["null", "bytes"]},
    ],
}
_PROPERTY_NAMES = ("message-id", "user-id", "to", "subject", "reply-to", "correlation-id", "content-type",
                   "content-encoding", "absolute-expiry-time", "creation-time", "group-id", "group-sequence",
                   "reply-to-group-id")


def capture_time(ms: int) -> str:
    """An enqueued time as Capture writes it (.NET's invariant `M/d/yyyy h:mm:ss tt`)."""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def parse_capture_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=dt.UTC)


def _avro_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float | str | bytes):
        return v
    if isinstance(v, uuid.UUID):
        return str(v)
    return str(v)


def record(ev: StoredEvent) -> dict[str, Any]:
    """One event as a Capture record."""
    system: dict[str, Any] = {"x-opt-sequence-number": ev.sequence_number, "x-opt-offset": str(ev.offset),
                              "x-opt-enqueued-time": ev.enqueued_ms}
    if ev.partition_key is not None:
        system["x-opt-partition-key"] = ev.partition_key
    props: dict[str, Any] = {}
    body = bytearray()
    has_body = False
    rest = ev.rest
    for s in messages.split_sections(rest):
        if s.code == messages.PROPERTIES:
            values = codec.decode_at(rest, s.value_start)[0]
            if isinstance(values, list):
                for name, v in zip(_PROPERTY_NAMES, values, strict=False):
                    if v is not None:
                        system[name] = _avro_value(v)
        elif s.code == messages.APP_PROPERTIES:
            values = codec.decode_at(rest, s.value_start)[0]
            if isinstance(values, dict):
                props = {str(k): _avro_value(v) for k, v in values.items()}
        elif s.code == messages.DATA:
            body += codec.decode_at(rest, s.value_start)[0]
            has_body = True
        elif s.code in (messages.AMQP_VALUE, messages.AMQP_SEQUENCE):
            body += rest[s.value_start:s.end]
            has_body = True
    return {"SequenceNumber": ev.sequence_number, "Offset": str(ev.offset),
            "EnqueuedTimeUtc": capture_time(ev.enqueued_ms), "SystemProperties": system, "Properties": props,
            "Body": bytes(body) if has_body else None}


class _Window:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.size = 0
        self.started = 0.0


class Capture:
    """Buffers appended events per partition and writes a file when a window's time or size is reached."""

    def __init__(self, namespace: Namespace, root: Path) -> None:
        import fastavro

        self.namespace = namespace
        self.root = root
        self._schema = fastavro.parse_schema(SCHEMA)
        self._windows: dict[tuple[str, str], _Window] = {}
        intervals = [h.config.capture.interval_seconds for h in namespace.hubs.values() if h.config.capture.enabled]
        self.tick_seconds = max(0.2, min(intervals) / 4) if intervals else 30.0
        self.files: deque[Path] = deque(maxlen=1000)  # the latest files written (bounded: a long run)

    def on_appended(self, hub: Hub, partition: Partition, events: list[StoredEvent]) -> None:
        cap = hub.config.capture
        if not cap.enabled or not events:
            return
        w = self._windows.setdefault((hub.name, partition.id), _Window())
        if not w.events:
            w.started = time.time()
        w.events.extend(events)
        w.size += sum(e.size for e in events)
        if w.size >= cap.size_bytes:
            self._write(hub, partition.id, w)

    def tick(self) -> None:
        now = time.time()
        for (hub_name, pid), w in list(self._windows.items()):
            hub = self.namespace.hub(hub_name)
            if hub is not None and w.events and now - w.started >= hub.config.capture.interval_seconds:
                self._write(hub, pid, w)

    def flush_all(self) -> None:
        for (hub_name, pid), w in list(self._windows.items()):
            hub = self.namespace.hub(hub_name)
            if hub is not None and w.events:
                self._write(hub, pid, w)

    def _write(self, hub: Hub, pid: str, w: _Window) -> None:
        import fastavro

        start = dt.datetime.fromtimestamp(w.started, dt.UTC)
        folder = (self.root / self.namespace.name / hub.name / pid / f"{start:%Y}" / f"{start:%m}" / f"{start:%d}"
                  / f"{start:%H}" / f"{start:%M}")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{start:%S}.avro"
        n = 1
        while path.exists():
            path = folder / f"{start:%S}-{n}.avro"
            n += 1
        tmp = path.with_suffix(".avro.tmp")
        with open(tmp, "wb") as f:
            fastavro.writer(f, self._schema, (record(e) for e in w.events), codec="deflate")
        os.replace(tmp, path)
        self.files.append(path)
        w.events, w.size = [], 0


def read_capture(path: str | Path) -> list[dict[str, Any]]:
    """The records of one Capture file (any Capture file, from Azure or from the emulator)."""
    import fastavro

    with open(path, "rb") as f:
        return [r for r in fastavro.reader(f) if isinstance(r, dict)]
