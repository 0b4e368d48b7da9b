"""Fields every event carries: type, schema version, deterministic id, correlation id, UTC ms time."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Event(BaseModel):
    """Base of all wire events. Immutable; unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    TYPE: ClassVar[str] = "event"

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    event_id: str = Field(min_length=8, max_length=64)
    # Follows one decision from the market event that caused it to the fill it ended in.
    correlation_id: str = Field(min_length=8, max_length=64)
    # When the event happened, Unix milliseconds UTC (for market data: the bar's close time).
    event_time: int = Field(ge=0)
