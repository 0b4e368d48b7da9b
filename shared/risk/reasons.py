"""Stable reason codes for risk rejections and reductions. Dashboards and alerts key on these."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    DUPLICATE = "DUPLICATE"
    POSITION_OPEN = "POSITION_OPEN"            # long-only: a BUY while already long
    NO_POSITION = "NO_POSITION"                # long-only: a SELL while flat
    ORDER_IN_FLIGHT = "ORDER_IN_FLIGHT"        # an order for the symbol is still working
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
