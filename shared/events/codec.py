"""Stable JSON encoding and strict decoding of events.

Encoding is canonical (sorted keys, no spaces, floats in shortest round-trip form), so the same
event always has the same bytes. Decoding checks the schema version first, then validates, and
raises a typed error naming the field, which the triggers put into the dead-letter record.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from .base import SCHEMA_VERSION, Event
from .errors import MalformedEvent, UnknownEventType, UnknownSchemaVersion
from .market import BookTicker, Kline, Trade
from .packs import BookTickerPack, TradePack
from .reconciliation import ReconciliationDifference
from .risk_events import TradingStateChanged
from .trading import ExecutionReport, OrderIntent, RiskDecision, Signal

AnyEvent = Annotated[
    Kline | Trade | BookTicker | TradePack | BookTickerPack | Signal | OrderIntent | RiskDecision | ExecutionReport
    | TradingStateChanged | ReconciliationDifference,
    Field(discriminator="type"),
]
EVENT_TYPES: dict[str, type[Event]] = {
    "kline": Kline,
    "trade": Trade,
    "book_ticker": BookTicker,
    "trade_pack": TradePack,
    "book_ticker_pack": BookTickerPack,
    "signal": Signal,
    "order_intent": OrderIntent,
    "risk_decision": RiskDecision,
    "execution_report": ExecutionReport,
    "trading_state_changed": TradingStateChanged,
    "reconciliation_difference": ReconciliationDifference,
}
SUPPORTED_VERSIONS = frozenset({SCHEMA_VERSION})

_adapter: TypeAdapter[Any] = TypeAdapter(AnyEvent)
E = TypeVar("E", bound=Event)


# json.dumps with these options builds a new encoder on every call; one shared encoder writes the
# same bytes (it holds no state between calls) and saves that on every published event.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(event: Event) -> bytes:
    """Canonical UTF-8 JSON of an event."""
    return _CANONICAL.encode(event.model_dump(mode="json")).encode("utf-8")


def _load(data: bytes | str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"body is not JSON: {exc}", field=None) from exc
    if not isinstance(obj, dict):
        raise MalformedEvent(f"body is a JSON {type(obj).__name__}, expected an object", field=None)
    version = obj.get("schema_version")
    if version is None:
        raise MalformedEvent("missing field 'schema_version'", field="schema_version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        raise UnknownSchemaVersion(
            f"unknown schema_version {version!r}; supported: {sorted(SUPPORTED_VERSIONS)}",
            field="schema_version")
    etype = obj.get("type")
    if etype not in EVENT_TYPES:
        raise UnknownEventType(f"unknown event type {etype!r}; known: {sorted(EVENT_TYPES)}", field="type")
    return obj


def _raise_validation(exc: ValidationError, etype: str) -> None:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if str(p) != etype]
    field = ".".join(loc) or None
    raise MalformedEvent(f"{etype}: field {field!r}: {err['msg']}", field=field) from exc


def decode(data: bytes | str) -> Event:
    """Decode any known event; raises an EventDecodeError subclass that names the field."""
    obj = _load(data)
    try:
        return _adapter.validate_python(obj)
    except ValidationError as exc:
        _raise_validation(exc, obj["type"])
        raise  # unreachable


def decode_as(data: bytes | str, cls: type[E]) -> E:
    """Decode and require one event type (a trigger on the signals hub accepts only signals)."""
    obj = _load(data)
    expected = cls.model_fields["type"].default
    if obj["type"] != expected:
        raise UnknownEventType(f"expected event type {expected!r}, got {obj['type']!r}", field="type")
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        _raise_validation(exc, obj["type"])
        raise
