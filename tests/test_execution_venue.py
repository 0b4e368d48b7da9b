"""The venue protocol's models, errors and exact decimal strings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.events import OrderType, Side
from shared.execution.venue import (
    Balance,
    Banned,
    OrderNotFound,
    OrderRequest,
    RateLimited,
    VenueAmbiguous,
    VenueError,
    VenueOrder,
    VenueOrderStatus,
    VenueRejected,
    VenueTrade,
    decimal_str,
    to_decimal,
)

# Binance's documented FULL response to a new order (POST /api/v3/order, newOrderRespType=FULL).
FULL_RESPONSE = {
    "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
    "transactTime": 1507725176595, "price": "0.00000000", "origQty": "10.00000000",
    "executedQty": "10.00000000", "origQuoteOrderQty": "0.000000", "cummulativeQuoteQty": "10.00000000",
    "status": "FILLED", "timeInForce": "GTC", "type": "MARKET", "side": "SELL", "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
    "fills": [
        {"price": "4000.00000000", "qty": "1.00000000", "commission": "4.00000000", "commissionAsset": "USDT",
         "tradeId": 56},
        {"price": "3999.00000000", "qty": "5.00000000", "commission": "19.99500000", "commissionAsset": "USDT",
         "tradeId": 57},
    ],
}

QUERY_RESPONSE = {
    "symbol": "LTCBTC", "orderId": 1, "orderListId": -1, "clientOrderId": "myOrder1", "price": "0.1",
    "origQty": "1.0", "executedQty": "0.0", "cummulativeQuoteQty": "0.0", "status": "NEW", "timeInForce": "GTC",
    "type": "LIMIT", "side": "BUY", "stopPrice": "0.0", "icebergQty": "0.0", "time": 1499827319559,
    "updateTime": 1499827319559, "isWorking": True, "workingTime": 1499827319559,
    "origQuoteOrderQty": "0.000000", "selfTradePreventionMode": "NONE",
}


def test_full_order_response_parses_exactly() -> None:
    order = VenueOrder.model_validate(FULL_RESPONSE)
    assert order.status is VenueOrderStatus.FILLED and order.side is Side.SELL
    assert order.executed_qty == Decimal("10") and order.cumulative_quote_qty == Decimal("10")
    assert [f.trade_id for f in order.fills] == [56, 57]
    assert order.fills[1].commission == Decimal("19.995") and order.fills[1].commission_asset == "USDT"
    assert order.event_time == 1507725176595


def test_query_response_uses_update_time() -> None:
    order = VenueOrder.model_validate(QUERY_RESPONSE)
    assert order.status is VenueOrderStatus.NEW and order.fills == ()
    assert order.time == 1499827319559 and order.event_time == 1499827319559


def test_bad_response_is_refused_where_it_enters() -> None:
    with pytest.raises(ValidationError):
        VenueOrder.model_validate({**FULL_RESPONSE, "status": "WHATEVER"})
    with pytest.raises(ValidationError):
        VenueOrder.model_validate({**FULL_RESPONSE, "executedQty": "-1"})
    with pytest.raises(ValidationError):
        VenueOrder.model_validate({k: v for k, v in FULL_RESPONSE.items() if k != "orderId"})


def test_balance_and_trade_models() -> None:
    bal = Balance.model_validate({"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"})
    assert bal.total == Decimal("4723846.89208129")
    trade = VenueTrade.model_validate({
        "symbol": "BNBBTC", "id": 28457, "orderId": 100234, "orderListId": -1, "price": "4.00000100",
        "qty": "12.00000000", "quoteQty": "48.000012", "commission": "10.10000000", "commissionAsset": "BNB",
        "time": 1499865549590, "isBuyer": True, "isMaker": False, "isBestMatch": True})
    fill = trade.as_fill()
    assert (fill.trade_id, fill.qty, fill.commission_asset) == (28457, Decimal("12"), "BNB")


@pytest.mark.parametrize(("value", "text"), [
    (0.1, "0.1"), (1e-8, "0.00000001"), (0.00001, "0.00001"), (123456789.0, "123456789"),
    (Decimal("5.000"), "5"), (Decimal("1E-8"), "0.00000001"), ("0.0100", "0.01"), (0.0, "0"),
    (1.1 + 2.2, "3.3000000000000003"),
])
def test_decimal_str_is_exact_fixed_point(value: float | Decimal | str, text: str) -> None:
    assert decimal_str(value) == text
    assert "e" not in decimal_str(value).lower()


def test_to_decimal_rounds_to_steps_toward_safety() -> None:
    assert to_decimal(0.123456789, "0.001") == Decimal("0.123")
    assert str(to_decimal(0.1 + 0.2, "0.00000001")) == "0.30000000"
    assert to_decimal(1.1 + 2.2, Decimal("0.1")) == Decimal("3.3")
    assert to_decimal(12.0, "1") == Decimal("12")
    with pytest.raises(ValueError):
        to_decimal(float("nan"))
    with pytest.raises(ValueError):
        to_decimal(1.0, "0")


def test_request_params_are_binance_strings() -> None:
    req = OrderRequest(symbol="ETHUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                       client_order_id="mf-0123456789abcdef0123456789abcdef", quote_quantity=to_decimal(99.9))
    assert req.params() == {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET",
                            "newClientOrderId": "mf-0123456789abcdef0123456789abcdef", "quoteOrderQty": "99.9"}
    with pytest.raises(ValidationError):
        OrderRequest(symbol="ETHUSDT", side=Side.BUY, order_type=OrderType.MARKET, client_order_id="bad id!")


def test_error_taxonomy_carries_codes() -> None:
    rej = VenueRejected(-2010, "Account has insufficient balance for requested action.")
    assert isinstance(rej, VenueError) and rej.code == -2010 and "insufficient" in rej.reason
    assert OrderNotFound().code == -2013
    assert RateLimited(12.0).http_status == 429 and RateLimited(12.0).retry_after_s == 12.0
    assert Banned(1_700_000_000_000).http_status == 418
    amb = VenueAmbiguous("timeout", http_status=None)
    assert amb.code is None and not isinstance(amb, VenueRejected)
