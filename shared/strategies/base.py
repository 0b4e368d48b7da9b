"""What a strategy is: a streaming decision on each closed bar, with snapshot and restore.

Strategies know nothing of positions, money or Azure. They say BUY or SELL on a bar's close;
whether that opens or closes anything is the risk layer's call (long-only spot: a BUY opens a
position when flat, a SELL closes it when long).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from shared.events import Side
from shared.indicators import Indicator
from shared.market import Bar


class StrategyParams(BaseModel):
    """Base of each strategy's documented parameters (validated once, at construction)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Strategy:
    """Base class. Subclasses set NAME, Params, build indicators in __init__ and implement on_bar."""

    NAME: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    # Names of attributes that hold indicators or plain state, snapshotted in this order.
    STATE: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: StrategyParams) -> None:
        self.params = params

    def on_bar(self, bar: Bar) -> Side | None:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for name in self.STATE:
            value = getattr(self, name)
            state[name] = value.snapshot() if isinstance(value, Indicator) else value
        return {"strategy": self.NAME, "params": self.params.model_dump(), "state": state}

    def restore(self, snap: dict[str, Any]) -> None:
        if snap.get("strategy") != self.NAME:
            raise ValueError(f"snapshot is of strategy {snap.get('strategy')!r}, not {self.NAME!r}")
        if snap["params"] != self.params.model_dump():
            raise ValueError(f"snapshot parameters {snap['params']} differ from {self.params.model_dump()}")
        for name in self.STATE:
            current = getattr(self, name)
            value = snap["state"][name]
            if isinstance(current, Indicator):
                current.restore(value)
            else:
                setattr(self, name, value)

