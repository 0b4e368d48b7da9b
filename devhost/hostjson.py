"""host.json's Event Hubs trigger settings (`extensions.eventHubs`), with the host's defaults."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from .timespan import parse_timespan

INITIAL_OFFSETS = ("fromStart", "fromEnd", "fromEnqueuedTime")


class EventHubsOptions(NamedTuple):
    max_event_batch_size: int = 100
    min_event_batch_size: int = 1
    max_wait_s: float = 60.0  # how long to wait for min_event_batch_size events
    prefetch_count: int = 300
    batch_checkpoint_frequency: int = 1
    initial_offset: str = "fromStart"
    initial_enqueued_time: datetime | None = None

    def starting_position(self) -> Any:
        """The SDK's `starting_position` for a partition that has no checkpoint yet."""
        if self.initial_offset == "fromEnd":
            return "@latest"
        if self.initial_offset == "fromEnqueuedTime":
            return self.initial_enqueued_time
        return "-1"


def read_host_json(path: Path) -> EventHubsOptions:
    """Read `path`; a missing `extensions.eventHubs` section means the defaults."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read host.json: {exc}") from exc
    section = ((doc.get("extensions") or {}).get("eventHubs") or {}) if isinstance(doc, dict) else {}
    defaults = EventHubsOptions()
    offsets = section.get("initialOffsetOptions") or {}
    kind = offsets.get("type", defaults.initial_offset)
    if kind not in INITIAL_OFFSETS:
        raise ValueError(f"{path}: initialOffsetOptions.type must be one of {INITIAL_OFFSETS}, got {kind!r}")
    enqueued = None
    if kind == "fromEnqueuedTime":
        text = offsets.get("enqueuedTimeUtc")
        if not text:
            raise ValueError(f"{path}: initialOffsetOptions.type fromEnqueuedTime needs enqueuedTimeUtc")
        enqueued = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    options = EventHubsOptions(
        max_event_batch_size=int(section.get("maxEventBatchSize", defaults.max_event_batch_size)),
        min_event_batch_size=int(section.get("minEventBatchSize", defaults.min_event_batch_size)),
        max_wait_s=parse_timespan(section["maxWaitTime"]) if "maxWaitTime" in section else defaults.max_wait_s,
        prefetch_count=int(section.get("prefetchCount", defaults.prefetch_count)),
        batch_checkpoint_frequency=int(section.get("batchCheckpointFrequency",
                                                   defaults.batch_checkpoint_frequency)),
        initial_offset=kind, initial_enqueued_time=enqueued)
    if options.max_event_batch_size < 1 or options.batch_checkpoint_frequency < 1:
        raise ValueError(f"{path}: maxEventBatchSize and batchCheckpointFrequency must be at least 1")
    return options
