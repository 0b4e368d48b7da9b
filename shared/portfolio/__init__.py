"""Positions, balances and PnL of a spot account, driven by execution reports and marks."""

from .book import AccountSnapshot, ClosedTrade, Position, PositionBook

__all__ = ["AccountSnapshot", "ClosedTrade", "Position", "PositionBook"]
