"""Common shape of the streaming indicators: O(1) `update`, `value`, snapshot and restore.

State is plain slots holding ints, floats and lists of floats, so a snapshot is JSON-safe and a
restore reproduces the stream bit for bit (floats survive a JSON round trip exactly).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Self


class Indicator:
    """Base of the streaming indicators. Subclasses list every piece of state in `__slots__`."""

    __slots__ = ()
    NAME: ClassVar[str] = "indicator"

    def snapshot(self) -> dict[str, Any]:
        """All state, deep-copied, as a JSON-safe dict."""
        state = {s: copy.deepcopy(getattr(self, s)) for s in _all_slots(type(self))}
        return {"indicator": self.NAME, "state": state}

    def restore(self, snap: dict[str, Any]) -> Self:
        """Load a snapshot taken from an indicator of the same type and parameters."""
        if snap.get("indicator") != self.NAME:
            raise ValueError(f"snapshot is of {snap.get('indicator')!r}, not {self.NAME!r}")
        for name, value in snap["state"].items():
            if name == "value" and isinstance(value, list):
                value = tuple(value)  # JSON turned the (a, b, c) outputs of MACD/BBANDS into a list
            setattr(self, name, copy.deepcopy(value))
        return self

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> Self:
        obj = cls.__new__(cls)
        return obj.restore(snap)


def _all_slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        for s in getattr(klass, "__slots__", ()):
            if s not in names:
                names.append(s)
    return names


def is_zero(x: float) -> bool:
    """TA-Lib's TA_IS_ZERO: |x| < 1e-14."""
    return -1e-14 < x < 1e-14
