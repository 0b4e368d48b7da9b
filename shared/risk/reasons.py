"""Stable reason codes for risk rejections, reductions and trading-state changes.

Dashboards, alerts and `summary.json` key on these strings: never rename one, only add. Exchange
filter failures use the Binance filter's own name, so an operator can look the rule up directly.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Reason(StrEnum):
    # -- idempotency and the long-only position rule ------------------------------------------
    DUPLICATE = "DUPLICATE"                        # signal or intent id already decided
    POSITION_OPEN = "POSITION_OPEN"                # long-only: a BUY while already long
    NO_POSITION = "NO_POSITION"                    # long-only: a SELL while flat
    ORDER_IN_FLIGHT = "ORDER_IN_FLIGHT"            # an order for the symbol is still working
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"  # cash (fees included) or base balance too small
    # -- trading state ------------------------------------------------------------------------
    TRADING_HALTED = "TRADING_HALTED"
    TRADING_REDUCING = "TRADING_REDUCING"
    KILL_SWITCH = "KILL_SWITCH"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    LOSS_STREAK_COOLDOWN = "LOSS_STREAK_COOLDOWN"
    EXCHANGE_BAN = "EXCHANGE_BAN"
    STATE_STORE_UNREADABLE = "STATE_STORE_UNREADABLE"
    ACCOUNT_UNAVAILABLE = "ACCOUNT_UNAVAILABLE"    # layer 1 has no account snapshot to check against
    # -- freshness and fat-finger guards ------------------------------------------------------
    STALE_SIGNAL = "STALE_SIGNAL"
    STALE_MARKET_DATA = "STALE_MARKET_DATA"
    PRICE_BAND = "PRICE_BAND"
    # -- exposure and sizing limits -----------------------------------------------------------
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    MAX_POSITION_NOTIONAL = "MAX_POSITION_NOTIONAL"
    MAX_POSITION_QTY = "MAX_POSITION_QTY"
    MAX_GROSS_EXPOSURE = "MAX_GROSS_EXPOSURE"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    RATE_LIMIT = "RATE_LIMIT"                      # global orders per minute
    RATE_LIMIT_SYMBOL = "RATE_LIMIT_SYMBOL"        # orders per minute for one symbol
    # -- exchange rules (Binance exchangeInfo) ------------------------------------------------
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"              # filters loaded, symbol not among them
    SYMBOL_NOT_TRADING = "SYMBOL_NOT_TRADING"      # exchangeInfo status is not TRADING
    QUOTE_ORDER_QTY_MARKET = "QUOTE_ORDER_QTY_MARKET"  # symbol forbids market orders by quote
    PRICE_FILTER = "PRICE_FILTER"
    PERCENT_PRICE_BY_SIDE = "PERCENT_PRICE_BY_SIDE"
    LOT_SIZE = "LOT_SIZE"
    MARKET_LOT_SIZE = "MARKET_LOT_SIZE"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    NOTIONAL = "NOTIONAL"
    MAX_NUM_ORDERS = "MAX_NUM_ORDERS"


class Failure(NamedTuple):
    """A rejection: the reason codes (the first is the check's own) and a human-readable detail."""

    reasons: tuple[str, ...]
    detail: str
