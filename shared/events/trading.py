"""Decision events: signal -> risk decision -> order intent -> execution report."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import SCHEMA_VERSION, Event, trusted
from .ids import client_order_id, id_of


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class Signal(Event):
    """A strategy's decision on a closed bar. Long-only spot: BUY opens, SELL closes."""

    type: Literal["signal"] = "signal"
    symbol: str = Field(min_length=1, max_length=20)
    strategy: str = Field(min_length=1, max_length=64)
    side: Side
    # The close of the bar the signal was decided on: the reference price for sizing and bands.
    price: float = Field(gt=0, allow_inf_nan=False)
    bar_open_time: int = Field(ge=0)
    market_event_id: str = Field(min_length=8, max_length=64)

    @classmethod
    def create(cls, *, symbol: str, strategy: str, side: Side, price: float, bar_open_time: int,
               bar_close_time: int, market_event_id: str, correlation_id: str) -> Signal:
        eid = id_of(f"signal\x1f{strategy}\x1f{symbol}\x1f{side.value}\x1f{bar_open_time}")
        # Built from a validated bar by the signal handler: see `trusted`.
        return trusted(cls, {
            "schema_version": SCHEMA_VERSION, "event_id": eid, "correlation_id": correlation_id,
            "event_time": bar_close_time, "type": "signal", "symbol": symbol, "strategy": strategy, "side": side,
            "price": price, "bar_open_time": bar_open_time, "market_event_id": market_event_id})


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderIntent(Event):
    """What risk approved: an order to place. The executor derives the client order id from it.

    A market BUY is sized by `quote_quantity` (the budget, fees included) because the fill price is
    not known yet; a SELL carries `quantity`. A LIMIT order carries `quantity` and `limit_price`.
    """

    type: Literal["order_intent"] = "order_intent"
    symbol: str = Field(min_length=1, max_length=20)
    strategy: str = Field(min_length=1, max_length=64)
    side: Side
    order_type: OrderType = OrderType.MARKET
    quantity: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    quote_quantity: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    limit_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    reference_price: float = Field(gt=0, allow_inf_nan=False)
    reduce_only: bool = False
    # Sizing was cut down to a limit (e.g. max order notional) rather than rejected.
    reduced: bool = False
    signal_id: str = Field(min_length=8, max_length=64)

    @model_validator(mode="after")
    def _sized(self) -> Self:
        if (self.quantity is None) == (self.quote_quantity is None):
            raise ValueError("exactly one of quantity and quote_quantity must be set")
        if self.order_type is OrderType.LIMIT and (self.limit_price is None or self.quantity is None):
            raise ValueError("a LIMIT order needs quantity and limit_price")
        return self

    @staticmethod
    def make_id(signal_id: str) -> str:
        return id_of(f"intent\x1f{signal_id}")

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.event_id)


class DecisionStatus(StrEnum):
    APPROVED = "APPROVED"
    REDUCED = "REDUCED"
    REJECTED = "REJECTED"


class RiskDecision(Event):
    """The outcome of one risk layer for one signal (layer 1) or intent (layer 2)."""

    type: Literal["risk_decision"] = "risk_decision"
    layer: Literal[1, 2]
    subject_id: str = Field(min_length=8, max_length=64)
    symbol: str = Field(min_length=1, max_length=20)
    status: DecisionStatus
    # Stable reason codes (see shared.risk.reasons); empty when approved unchanged.
    reasons: tuple[Annotated[str, Field(max_length=64)], ...] = Field(default=(), max_length=16)
    detail: str = Field(default="", max_length=1024)

    @property
    def approved(self) -> bool:
        return self.status is not DecisionStatus.REJECTED

    @classmethod
    def create(cls, *, layer: Literal[1, 2], subject_id: str, symbol: str, status: DecisionStatus,
               reasons: tuple[str, ...], detail: str, correlation_id: str, event_time: int) -> RiskDecision:
        # Built by the risk engine from a validated signal or intent: see `trusted`.
        return trusted(cls, {
            "schema_version": SCHEMA_VERSION, "event_id": id_of(f"decision\x1f{layer}\x1f{subject_id}"),
            "correlation_id": correlation_id, "event_time": event_time, "type": "risk_decision", "layer": layer,
            "subject_id": subject_id, "symbol": symbol, "status": status, "reasons": reasons, "detail": detail})


class Fill(BaseModel):
    """One fill as Binance reports it in an order response's `fills` array."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    price: float = Field(gt=0, allow_inf_nan=False)
    quantity: float = Field(gt=0, allow_inf_nan=False)
    commission: float = Field(ge=0, allow_inf_nan=False)
    commission_asset: str = Field(min_length=1, max_length=20)
    trade_id: int = Field(ge=0)


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class ExecutionReport(Event):
    """An order's state after an exchange (or the paper venue) acted on it."""

    type: Literal["execution_report"] = "execution_report"
    intent_id: str = Field(min_length=8, max_length=64)
    client_order_id: str = Field(max_length=36, pattern=r"^[.A-Za-z:/0-9_-]{1,36}$")
    symbol: str = Field(min_length=1, max_length=20)
    side: Side
    status: OrderStatus
    venue: Literal["paper", "binance"]
    order_id: int = Field(ge=0)
    base_asset: str = Field(min_length=1, max_length=20)
    quote_asset: str = Field(min_length=1, max_length=20)
    fills: tuple[Fill, ...] = ()
    executed_qty: float = Field(default=0.0, ge=0)
    cumulative_quote_qty: float = Field(default=0.0, ge=0)
    reject_reason: str = Field(default="", max_length=1024)

    @classmethod
    def create(cls, *, intent: OrderIntent, status: OrderStatus, venue: Literal["paper", "binance"],
               order_id: int, base_asset: str, quote_asset: str, fills: tuple[Fill, ...],
               event_time: int, reject_reason: str = "") -> ExecutionReport:
        executed = quote = 0.0
        for f in fills:
            executed += f.quantity
            quote += f.quantity * f.price
        coid = client_order_id(intent.event_id)
        eid = id_of(f"execution\x1f{coid}\x1f{status.value}\x1f{executed!r}")
        # Built by a broker from a validated intent and its own fills: see `trusted`. (A venue
        # adapter validates the exchange's response where it enters, before calling this.)
        return trusted(cls, {
            "schema_version": SCHEMA_VERSION, "event_id": eid, "correlation_id": intent.correlation_id,
            "event_time": event_time, "type": "execution_report", "intent_id": intent.event_id,
            "client_order_id": coid, "symbol": intent.symbol, "side": intent.side, "status": status, "venue": venue,
            "order_id": order_id, "base_asset": base_asset, "quote_asset": quote_asset, "fills": fills,
            "executed_qty": executed, "cumulative_quote_qty": quote, "reject_reason": reject_reason})
