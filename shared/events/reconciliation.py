"""A difference the executor found between its own records and the venue's truth, and what it did."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Event
from .ids import deterministic_id

Subject = Literal["order", "orphan_order", "balance"]


class ReconciliationDifference(Event):
    """One difference found by reconciliation (at start-up, or after an ambiguous outcome).

    `ours` and `venue` are what each side said (an order state, a balance as an exact string);
    the difference is always resolved toward the venue, and `resolution` says how.
    """

    type: Literal["reconciliation_difference"] = "reconciliation_difference"
    subject: Subject
    key: str = Field(min_length=1, max_length=64)   # client order id, or asset
    symbol: str = Field(default="", max_length=20)
    ours: str = Field(max_length=256)
    venue: str = Field(max_length=256)
    resolution: str = Field(min_length=1, max_length=512)

    @classmethod
    def create(cls, *, subject: Subject, key: str, ours: str, venue: str, resolution: str, event_time: int,
               symbol: str = "", correlation_id: str | None = None) -> ReconciliationDifference:
        eid = deterministic_id("reconciliation", subject, key, ours, venue, event_time)
        return cls(event_id=eid, correlation_id=correlation_id or eid, event_time=event_time, subject=subject,
                   key=key, symbol=symbol, ours=ours[:256], venue=venue[:256], resolution=resolution[:512])
