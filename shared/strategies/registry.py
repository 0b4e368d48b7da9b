"""Strategy registry: name -> class, with parameters parsed and validated from `k=v` strings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .base import Strategy
from .crossovers import EmaCross, SmaCross
from .reversion import BollingerBreakout, RsiReversion

STRATEGIES: dict[str, type[Strategy]] = {
    cls.NAME: cls for cls in (SmaCross, EmaCross, RsiReversion, BollingerBreakout)
}


class StrategyConfigError(ValueError):
    """Unknown strategy name or invalid parameters."""


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """Turn ["fast=10", "slow=20"] into a dict, rejecting anything without '='."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise StrategyConfigError(f"parameter {pair!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out


def create(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """A fresh strategy instance; raises StrategyConfigError naming the bad parameter."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise StrategyConfigError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None
    try:
        parsed = cls.Params.model_validate(dict(params or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "parameters"
        raise StrategyConfigError(f"{name}: {where}: {err['msg']}") from None
    return cls(parsed)


def describe() -> dict[str, dict[str, Any]]:
    """Each strategy's docstring and parameters with defaults and descriptions (for `--help`)."""
    out: dict[str, dict[str, Any]] = {}
    for name, cls in STRATEGIES.items():
        params = {
            k: {"default": f.default, "description": f.description or ""}
            for k, f in cls.Params.model_fields.items()
        }
        out[name] = {"doc": (cls.__doc__ or "").strip(), "params": params}
    return out
