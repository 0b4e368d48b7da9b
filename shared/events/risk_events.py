"""Risk events that leave the risk engine: trading-state changes, kept for audit and alerting."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Event
from .ids import deterministic_id

TradingStateName = Literal["ACTIVE", "REDUCING", "HALTED"]


class TradingStateChanged(Event):
    """The account's trading state changed: who or what changed it, why, and until when.

    `version` counts the changes of one state store, so the id is deterministic and a replay
    of the same inputs emits the same events.
    """

    type: Literal["trading_state_changed"] = "trading_state_changed"
    previous: TradingStateName
    state: TradingStateName
    # An operator name for manual changes, `risk:<trigger>` or `exchange` for automatic ones.
    who: str = Field(min_length=1, max_length=128)
    # A stable reason code (shared.risk.reasons) followed by a human-readable detail.
    why: str = Field(min_length=1, max_length=512)
    # Unix ms UTC at which an automatic restriction lapses by itself; None = until changed by hand.
    until: int | None = Field(default=None, ge=0)
    version: int = Field(ge=1)

    @classmethod
    def create(cls, *, previous: str, state: str, who: str, why: str, until: int | None, version: int,
               event_time: int) -> TradingStateChanged:
        eid = deterministic_id("trading_state", version, previous, state, who, event_time)
        return cls(event_id=eid, correlation_id=eid, event_time=event_time, previous=previous,  # type: ignore[arg-type]
                   state=state, who=who, why=why[:512], until=until, version=version)  # type: ignore[arg-type]
