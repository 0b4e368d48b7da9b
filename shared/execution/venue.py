"""What the executor needs of a trading venue: the `Venue` protocol, its typed responses and errors.

Every venue (the paper venue, Binance) implements the same six async calls. Responses are
validated where they enter: a venue adapter builds these models from the exchange's JSON (field
aliases are Binance's names, so `VenueOrder.model_validate(response)` parses an order response)
before any `ExecutionReport` is built. Quantities and prices are `Decimal`s here and go to the
venue as exact decimal strings (`decimal_str`), never as a float's repr.

Errors are a small taxonomy, because the executor's next step depends only on which kind it is:

- `VenueRejected`: the venue refused the request and did nothing (-1013 / -2010, filter failures).
- `VenueAmbiguous`: the request may or may not have been acted on (transport error, timeout, 5xx,
  -1007): the order goes to UNKNOWN and is queried, never blindly resent.
- `OrderNotFound`: -2013 (right after a send it can mean "not visible yet").
- `RateLimited`: HTTP 429, with Binance's Retry-After; the request was not acted on.
- `Banned`: HTTP 418 (IP banned until a time); the request was not acted on.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from shared.events import OrderType, Side

# -- exact decimals ----------------------------------------------------------------------------


def to_decimal(value: float | Decimal | str, step: Decimal | str | None = None, *,
               rounding: str = ROUND_DOWN) -> Decimal:
    """A quantity or price as an exact Decimal: a float is read as its shortest round-tripping
    decimal (so 0.1 is 0.1, not 0.1000000000000000055...), then, with `step`, rounded to a whole
    number of steps (down by default: toward the smaller, safer order)."""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"not a finite number: {value!r}")
        d = Decimal(repr(value))
    elif isinstance(value, Decimal):
        d = value
    else:
        d = Decimal(value)
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    if step is not None:
        s = Decimal(step)
        if s <= 0:
            raise ValueError("step must be > 0")
        d = (d / s).to_integral_value(rounding=rounding) * s  # exact: the exponent is the step's
    return d


def decimal_str(value: Decimal | float | str) -> str:
    """The exact fixed-point string a venue receives: no exponent, no trailing zeros
    (`Decimal("1E-8")` -> "0.00000001", `Decimal("5.000")` -> "5")."""
    d = to_decimal(value)
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


# -- requests ----------------------------------------------------------------------------------


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderRequest(BaseModel):
    """One new order, as the executor stored it before sending: exact decimals, derived client id.

    A MARKET order carries `quantity` or `quote_quantity` (Binance's `quoteOrderQty`); a LIMIT order
    carries `quantity`, `price` and a time in force.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(min_length=1, max_length=20)
    side: Side
    order_type: OrderType
    client_order_id: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,36}$")
    quantity: Decimal | None = Field(default=None, gt=0)
    quote_quantity: Decimal | None = Field(default=None, gt=0)
    price: Decimal | None = Field(default=None, gt=0)
    time_in_force: TimeInForce | None = None

    def params(self) -> dict[str, str]:
        """The order as Binance's `POST /api/v3/order` parameters, every number an exact string."""
        out = {"symbol": self.symbol, "side": self.side.value, "type": self.order_type.value,
               "newClientOrderId": self.client_order_id}
        if self.quantity is not None:
            out["quantity"] = decimal_str(self.quantity)
        if self.quote_quantity is not None:
            out["quoteOrderQty"] = decimal_str(self.quote_quantity)
        if self.price is not None:
            out["price"] = decimal_str(self.price)
        if self.time_in_force is not None:
            out["timeInForce"] = self.time_in_force.value
        return out


# -- responses ---------------------------------------------------------------------------------


class VenueOrderStatus(StrEnum):
    """Binance's order statuses (spot)."""

    NEW = "NEW"
    PENDING_NEW = "PENDING_NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PENDING_CANCEL = "PENDING_CANCEL"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"


_MODEL = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class VenueFill(BaseModel):
    """One fill of an order response's `fills` array."""

    model_config = _MODEL

    price: Decimal = Field(gt=0)
    qty: Decimal = Field(gt=0)
    commission: Decimal = Field(ge=0)
    commission_asset: str = Field(validation_alias="commissionAsset", min_length=1)
    trade_id: int = Field(validation_alias="tradeId", ge=0)


class VenueOrder(BaseModel):
    """An order as the venue reports it (Binance's order response / query / open-orders item).

    `fills` is present only in a FULL new-order response; a query reports the executed quantities
    only, and the executor takes the fills from `recent_trades`.
    """

    model_config = _MODEL

    symbol: str
    order_id: int = Field(validation_alias="orderId", ge=0)
    client_order_id: str = Field(validation_alias="clientOrderId")
    side: Side
    order_type: str = Field(validation_alias="type")
    status: VenueOrderStatus
    orig_qty: Decimal = Field(default=Decimal(0), validation_alias="origQty", ge=0)
    executed_qty: Decimal = Field(default=Decimal(0), validation_alias="executedQty", ge=0)
    cumulative_quote_qty: Decimal = Field(default=Decimal(0), validation_alias="cummulativeQuoteQty", ge=0)
    price: Decimal = Field(default=Decimal(0), ge=0)
    time_in_force: str | None = Field(default=None, validation_alias="timeInForce")
    # transactTime in a new-order response, updateTime in a query: ms UTC.
    time: int = Field(default=0, ge=0, validation_alias=AliasChoices("transactTime", "time"))
    update_time: int | None = Field(default=None, validation_alias="updateTime")
    fills: tuple[VenueFill, ...] = ()

    @property
    def event_time(self) -> int:
        return self.update_time if self.update_time is not None else self.time


class Balance(BaseModel):
    """One asset of the account (Binance's `GET /api/v3/account` balances item)."""

    model_config = _MODEL

    asset: str = Field(min_length=1)
    free: Decimal = Field(ge=0)
    locked: Decimal = Field(default=Decimal(0), ge=0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class VenueTrade(BaseModel):
    """One of the account's trades (Binance's `GET /api/v3/myTrades` item)."""

    model_config = _MODEL

    symbol: str
    trade_id: int = Field(validation_alias="id", ge=0)
    order_id: int = Field(validation_alias="orderId", ge=0)
    price: Decimal = Field(gt=0)
    qty: Decimal = Field(gt=0)
    quote_qty: Decimal = Field(default=Decimal(0), validation_alias="quoteQty", ge=0)
    commission: Decimal = Field(ge=0)
    commission_asset: str = Field(validation_alias="commissionAsset", min_length=1)
    time: int = Field(ge=0)
    is_buyer: bool = Field(validation_alias="isBuyer")

    def as_fill(self) -> VenueFill:
        return VenueFill(price=self.price, qty=self.qty, commission=self.commission,
                         commission_asset=self.commission_asset, trade_id=self.trade_id)


# -- errors ------------------------------------------------------------------------------------


class VenueError(Exception):
    """A venue call failed. `http_status` and `code` are the venue's (None when it gave none)."""

    def __init__(self, detail: str = "", *, http_status: int | None = None, code: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.http_status = http_status
        self.code = code


class VenueRejected(VenueError):
    """The venue refused the request and did nothing (e.g. -1013 filter failure, -2010 insufficient
    balance or duplicate order). `reason` is the venue's own message."""

    def __init__(self, code: int | None, reason: str, *, http_status: int | None = 400) -> None:
        super().__init__(reason, http_status=http_status, code=code)
        self.reason = reason


class VenueAmbiguous(VenueError):
    """The outcome is unknown: transport error, timeout, HTTP 5xx or -1007. Query, never resend."""


class OrderNotFound(VenueError):
    """The venue does not know the order (-2013); right after a send it may not be visible yet."""

    def __init__(self, detail: str = "Order does not exist.", *, http_status: int | None = 400,
                 code: int | None = -2013) -> None:
        super().__init__(detail, http_status=http_status, code=code)


class RateLimited(VenueError):
    """HTTP 429: too many requests; nothing was done. Wait `retry_after_s` before the next one."""

    def __init__(self, retry_after_s: float | None, detail: str = "", *, code: int | None = -1003) -> None:
        super().__init__(detail, http_status=429, code=code)
        self.retry_after_s = retry_after_s


class Banned(VenueError):
    """HTTP 418: the IP is banned until `until_ms` (ms UTC, None when the venue did not say)."""

    def __init__(self, until_ms: int | None, detail: str = "", *, retry_after_s: float | None = None,
                 code: int | None = -1003) -> None:
        super().__init__(detail, http_status=418, code=code)
        self.until_ms = until_ms
        self.retry_after_s = retry_after_s


# -- the protocol ------------------------------------------------------------------------------


@runtime_checkable
class Venue(Protocol):
    """A trading venue for one account. Every call raises a `VenueError` subclass on failure."""

    name: str  # "paper" or "binance": the `venue` of the ExecutionReports built from it

    async def submit(self, order: OrderRequest) -> VenueOrder:
        """Place a new order; the venue's response (with `fills` when it filled at once)."""
        ...

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrder:
        """Cancel an open order by its client order id; the order as canceled."""
        ...

    async def query_order(self, symbol: str, client_order_id: str) -> VenueOrder:
        """An order by its client order id (Binance's `origClientOrderId`); OrderNotFound if none."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """The account's open orders, of one symbol or all."""
        ...

    async def balances(self) -> list[Balance]:
        """The account's balances (assets with a zero balance may be left out)."""
        ...

    async def recent_trades(self, symbol: str, *, since_ms: int | None = None, order_id: int | None = None,
                            limit: int = 500) -> list[VenueTrade]:
        """The account's trades of a symbol, oldest first: since a time, or of one order."""
        ...
