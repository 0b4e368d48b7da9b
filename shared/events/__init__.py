"""Wire event schemas (pydantic v2), their deterministic ids and their stable JSON codec."""

from .base import SCHEMA_VERSION, Event
from .codec import EVENT_TYPES, decode, decode_as, encode
from .errors import EventDecodeError, MalformedEvent, UnknownEventType, UnknownSchemaVersion
from .ids import client_order_id, deterministic_id
from .market import BookTicker, Kline, Trade
from .packs import BookTickerPack, BookTickerRow, TradePack, TradeRow, pack, unpack
from .reconciliation import ReconciliationDifference
from .risk_events import TradingStateChanged
from .trading import (
    DecisionStatus,
    ExecutionReport,
    Fill,
    OrderIntent,
    OrderStatus,
    OrderType,
    RiskDecision,
    Side,
    Signal,
)

__all__ = [
    "EVENT_TYPES", "SCHEMA_VERSION", "BookTicker", "BookTickerPack", "BookTickerRow", "DecisionStatus", "Event",
    "EventDecodeError", "ExecutionReport", "Fill", "Kline", "MalformedEvent", "OrderIntent", "OrderStatus", "OrderType",
    "ReconciliationDifference", "RiskDecision", "Side", "Signal", "Trade", "TradePack", "TradeRow",
    "TradingStateChanged", "UnknownEventType", "UnknownSchemaVersion", "client_order_id", "decode", "decode_as",
    "deterministic_id", "encode", "pack", "unpack",
]
