"""Typed models of the Binance REST responses, validated where they enter.

Orders, fills, balances and trades are the venue-neutral models of `shared.execution.venue`
(their field aliases are Binance's names), so a Binance response becomes a `VenueOrder` in one
validation step, before any `ExecutionReport` is built from it. This module adds what only the
Binance adapter reads: the server time, the account (canTrade) and exchangeInfo. Decimal
fields stay `Decimal`; fields Binance adds later are ignored; fields the executor needs are
required, so a malformed response fails loudly where it enters.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.execution.venue import Balance, VenueOrder, VenueTrade


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class ServerTime(_Model):
    server_time: int = Field(alias="serverTime", ge=0)


class AccountInfo(_Model):
    """`GET /api/v3/account`."""

    can_trade: bool = Field(alias="canTrade")
    account_type: str = Field(alias="accountType", default="SPOT")
    update_time: int = Field(alias="updateTime", default=0)
    balances: tuple[Balance, ...]
    permissions: tuple[str, ...] = ()


class ExchangeInfo(_Model):
    """`GET /api/v3/exchangeInfo`; the symbols stay raw documents for `shared.risk.filters`."""

    server_time: int = Field(alias="serverTime", default=0)
    rate_limits: tuple[dict[str, Any], ...] = Field(alias="rateLimits")
    symbols: tuple[dict[str, Any], ...]


ORDERS: TypeAdapter[list[VenueOrder]] = TypeAdapter(list[VenueOrder])
TRADES: TypeAdapter[list[VenueTrade]] = TypeAdapter(list[VenueTrade])
