"""Typed models of the Binance REST responses the executor reads, validated where they enter.

Every response is validated into one of these before anything else (an `ExecutionReport`, a
balance, a reconciliation) is built from it. Decimal fields stay `Decimal` (Binance sends them
as strings; a float would lose the exact quantity). Fields Binance adds later are ignored;
fields the executor needs are required, so a malformed response fails loudly where it enters.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

OrderStatus = Literal["NEW", "PENDING_NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "PENDING_CANCEL",
                      "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"]
Side = Literal["BUY", "SELL"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ServerTime(_Model):
    server_time: int = Field(alias="serverTime", ge=0)


class Balance(_Model):
    asset: str = Field(min_length=1)
    free: Decimal = Field(ge=0)
    locked: Decimal = Field(ge=0)


class AccountInfo(_Model):
    can_trade: bool = Field(alias="canTrade")
    account_type: str = Field(alias="accountType", default="SPOT")
    update_time: int = Field(alias="updateTime", default=0)
    balances: tuple[Balance, ...]
    permissions: tuple[str, ...] = ()


class OrderFill(_Model):
    price: Decimal = Field(gt=0)
    qty: Decimal = Field(gt=0)
    commission: Decimal = Field(ge=0)
    commission_asset: str = Field(alias="commissionAsset")
    trade_id: int = Field(alias="tradeId", ge=0)


class OrderResponse(_Model):
    """`POST /api/v3/order` with newOrderRespType FULL (fills) or RESULT (no fills)."""

    symbol: str
    order_id: int = Field(alias="orderId", ge=0)
    client_order_id: str = Field(alias="clientOrderId")
    transact_time: int = Field(alias="transactTime")
    price: Decimal = Field(ge=0)
    orig_qty: Decimal = Field(alias="origQty", ge=0)
    executed_qty: Decimal = Field(alias="executedQty", ge=0)
    cummulative_quote_qty: Decimal = Field(alias="cummulativeQuoteQty", ge=0)
    status: OrderStatus
    type: str
    side: Side
    fills: tuple[OrderFill, ...] = ()


class OrderView(_Model):
    """One order from `GET /api/v3/order`, `GET /api/v3/openOrders` or `DELETE /api/v3/order`."""

    symbol: str
    order_id: int = Field(alias="orderId", ge=0)
    client_order_id: str = Field(alias="clientOrderId")
    orig_client_order_id: str | None = Field(alias="origClientOrderId", default=None)
    price: Decimal = Field(ge=0)
    orig_qty: Decimal = Field(alias="origQty", ge=0)
    executed_qty: Decimal = Field(alias="executedQty", ge=0)
    cummulative_quote_qty: Decimal = Field(alias="cummulativeQuoteQty", ge=0)
    status: OrderStatus
    type: str
    side: Side
    time: int = 0
    update_time: int = Field(alias="updateTime", default=0)

    @property
    def own_client_order_id(self) -> str:
        """The order's client id (a cancel response names it `origClientOrderId`)."""
        return self.orig_client_order_id or self.client_order_id


class MyTrade(_Model):
    """One entry of `GET /api/v3/myTrades`."""

    symbol: str
    id: int = Field(ge=0)
    order_id: int = Field(alias="orderId", ge=0)
    price: Decimal = Field(gt=0)
    qty: Decimal = Field(gt=0)
    quote_qty: Decimal = Field(alias="quoteQty", ge=0)
    commission: Decimal = Field(ge=0)
    commission_asset: str = Field(alias="commissionAsset")
    time: int
    is_buyer: bool = Field(alias="isBuyer")
    is_maker: bool = Field(alias="isMaker")


class ExchangeInfo(_Model):
    """`GET /api/v3/exchangeInfo`: kept as the raw document for `shared.risk.filters`."""

    server_time: int = Field(alias="serverTime", default=0)
    rate_limits: tuple[dict[str, Any], ...] = Field(alias="rateLimits")
    symbols: tuple[dict[str, Any], ...]


ORDER_VIEWS: TypeAdapter[list[OrderView]] = TypeAdapter(list[OrderView])
MY_TRADES: TypeAdapter[list[MyTrade]] = TypeAdapter(list[MyTrade])
