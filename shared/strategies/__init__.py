"""Strategies: streaming BUY/SELL decisions on closed bars, and their registry."""

from .base import Strategy, StrategyParams
from .registry import STRATEGIES, StrategyConfigError, create, describe, parse_params

__all__ = ["STRATEGIES", "Strategy", "StrategyConfigError", "StrategyParams", "create", "describe",
           "parse_params"]
