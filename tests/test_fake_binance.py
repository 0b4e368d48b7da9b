"""The fake Binance is as strict as the exchange: signatures over the bytes as sent (Binance's own
HMAC example as the test vector), timestamps, parameters, filters, balances, client ids, limits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException
from fake_binance import (
    DOC_API_KEY,
    DOC_SECRET,
    Account,
    FakeBinance,
    Fault,
    RateLimits,
    hmac_hex,
    signature_payload,
    verify_signature,
)

# rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order", HMAC keys.
DOC_ASCII = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
             "&timestamp=1499827319559")
DOC_ASCII_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_UNICODE = ("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT&timeInForce=GTC"
               "&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
DOC_UNICODE_SIG = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
DOC_TIME = 1499827319.559 + 0.2


def run(coro_fn: Callable[[FakeBinance], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        async with FakeBinance(**kw) as fake:
            fake.add_hmac_account(DOC_API_KEY, DOC_SECRET)
            return await coro_fn(fake)
    return asyncio.run(main())


async def client_for(fake: FakeBinance, key: str = DOC_API_KEY, **kw: Any) -> AsyncClient:
    c = AsyncClient(key, kw.pop("secret", DOC_SECRET) if "private_key" not in kw else None, **kw)
    c.API_URL = fake.base_url + "/api"
    c.REQUEST_RECVWINDOW = 5000
    return c


async def raw(fake: FakeBinance, method: str, endpoint: str, query: str = "", body: str = "",
              key: str = DOC_API_KEY) -> tuple[int, dict[str, Any], Any]:
    url = f"{fake.base_url}/api/v3/{endpoint}" + (f"?{query}" if query else "")
    async with aiohttp.ClientSession() as s, s.request(
            method, aiohttp.client.URL(url, encoded=True), data=body.encode() if body else None,
            headers={"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}) as r:
        return r.status, dict(r.headers), await r.json()


def test_binance_hmac_example_is_the_test_vector() -> None:
    assert hmac_hex(DOC_SECRET, DOC_ASCII.encode()) == DOC_ASCII_SIG
    assert hmac_hex(DOC_SECRET, DOC_UNICODE.encode()) == DOC_UNICODE_SIG
    # The signature is over the percent-encoded bytes, not the decoded text.
    decoded = DOC_UNICODE.replace("%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96", "１２３４５６")
    assert hmac.new(DOC_SECRET.encode(), decoded.encode(), hashlib.sha256).hexdigest() != DOC_UNICODE_SIG
    acct = Account(DOC_API_KEY, secret=DOC_SECRET)
    for payload, sig in ((DOC_ASCII, DOC_ASCII_SIG), (DOC_UNICODE, DOC_UNICODE_SIG)):
        assert signature_payload(f"{payload}&signature={sig}", b"") == (payload.encode(), sig)
        assert verify_signature(acct, f"{payload}&signature={sig}", b"")
        assert verify_signature(acct, f"{payload}&signature={sig.upper()}", b"")  # HMAC is case-insensitive
        # query + body concatenated without separator, as Binance defines the payload
        q, b = payload.split("&quantity", 1)
        assert verify_signature(acct, q, f"&quantity{b}&signature={sig}".encode())
        assert not verify_signature(acct, f"{payload}0&signature={sig}", b"")


def test_doc_example_request_passes_signature_and_timing_checks() -> None:
    """Binance's curl example, sent as is at its own timestamp: the signature and the timestamp
    pass (it fails only because LTCBTC is not in the bundled exchangeInfo); one byte changed fails."""
    async def go(fake: FakeBinance) -> None:
        for payload, sig in ((DOC_ASCII, DOC_ASCII_SIG), (DOC_UNICODE, DOC_UNICODE_SIG)):
            status, _, body = await raw(fake, "POST", "order", f"{payload}&signature={sig}")
            assert (status, body["code"]) == (400, -1121)
        status, _, body = await raw(fake, "POST", "order", f"{DOC_ASCII.replace('1&price', '2&price')}"
                                                           f"&signature={DOC_ASCII_SIG}")
        assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
        # the same signature in the body instead of the query string
        status, _, body = await raw(fake, "POST", "order", body=f"{DOC_ASCII}&signature={DOC_ASCII_SIG}")
        assert body["code"] == -1121
    run(go, clock=lambda: DOC_TIME)


def test_timestamps_checked_against_the_fakes_clock() -> None:
    async def go(fake: FakeBinance) -> None:
        def signed(ts: int, window: str = "5000") -> str:
            q = f"recvWindow={window}&timestamp={ts}"
            return f"{q}&signature={hmac_hex(DOC_SECRET, q.encode())}"
        now = fake.now_ms()
        assert (await raw(fake, "GET", "account", signed(now - 100)))[0] == 200
        _, _, body = await raw(fake, "GET", "account", signed(now - 6000))
        assert body == {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
        _, _, body = await raw(fake, "GET", "account", signed(now + 1500))
        assert body == {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."}
        assert (await raw(fake, "GET", "account", signed(now, "60001")))[2]["code"] == -1131
        assert (await raw(fake, "GET", "account", signed(now), key="nope"))[2]["code"] == -2015
        q = f"timestamp={now}"
        assert (await raw(fake, "GET", "account", q))[2]["code"] == -1102  # no signature
    run(go)


def test_python_binance_hmac_and_ed25519_are_accepted_and_forgeries_are_not() -> None:
    async def go(fake: FakeBinance) -> None:
        _, pem = fake.add_ed25519_account("ed-key")
        _, other_pem = FakeBinance().add_ed25519_account("unused")
        for c in (await client_for(fake), await client_for(fake, "ed-key", private_key=pem)):
            try:
                assert (await c.get_account())["canTrade"] is True
                r = await c.create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.0100")
                assert r["status"] == "FILLED"
            finally:
                await c.close_connection()
        for c in (await client_for(fake, secret="wrong"), await client_for(fake, "ed-key", private_key=other_pem)):
            try:
                with pytest.raises(BinanceAPIException) as e:
                    await c.get_account()
                assert e.value.code == -1022
            finally:
                await c.close_connection()
    run(go)


async def _order_error(c: AsyncClient, **params: str) -> tuple[int, str]:
    with pytest.raises(BinanceAPIException) as e:
        await c.create_order(**params)
    return e.value.code, e.value.message


def test_filters_parameters_and_balances_are_enforced() -> None:
    async def go(fake: FakeBinance) -> None:
        c = await client_for(fake)
        lim = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        try:
            assert await _order_error(c, **lim, quantity="0.00001", price="2500.00") == (
                -1013, "Filter failure: LOT_SIZE")
            assert await _order_error(c, **lim, quantity="0.01005", price="2500.00") == (
                -1013, "Filter failure: LOT_SIZE")
            assert await _order_error(c, **lim, quantity="0.0100", price="2500.005") == (
                -1013, "Filter failure: PRICE_FILTER")
            assert await _order_error(c, **lim, quantity="0.0010", price="2500.00") == (
                -1013, "Filter failure: NOTIONAL")
            assert await _order_error(c, **lim, quantity="0.0100", price="100.00") == (
                -1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
            code, msg = await _order_error(c, **lim, quantity="1e-05", price="2500.00")
            assert code == -1100 and "quantity" in msg
            assert (await _order_error(c, **lim, quantity="0.000000001", price="2500.00"))[0] == -1111
            assert await _order_error(c, symbol="BTCUSDT", side="SELL", type="MARKET", quantity="100") == (
                -1013, "Filter failure: MARKET_LOT_SIZE")
            assert await _order_error(c, symbol="ETHUSDT", side="BUY", type="MARKET", quoteOrderQty="20000") == (
                -2010, "Account has insufficient balance for requested action.")
            assert (await _order_error(c, symbol="ETHUSDT", side="BUY", type="MARKET", quoteOrderQty="10",
                                       quantity="1"))[0] == -1106
            for bad in ("bad.id", "x" * 37):
                assert (await _order_error(c, **lim, quantity="0.0100", price="2500.00",
                                           newClientOrderId=bad))[0] == -1100
            # python-binance signs "a b!" but aiohttp sends "a+b%21": over the bytes as sent, that is a
            # bad signature, as on Binance (the executor's ids never need encoding).
            assert (await _order_error(c, **lim, quantity="0.0100", price="2500.00",
                                       newClientOrderId="a b!"))[0] == -1022
            assert not fake.orders
        finally:
            await c.close_connection()
    run(go)


def test_client_order_id_unique_among_open_orders_only() -> None:
    async def go(fake: FakeBinance) -> None:
        c = await client_for(fake)
        lim = {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.0100",
               "price": "2500.00", "newClientOrderId": "mf-same"}
        try:
            r = await c.create_order(**lim)
            assert r["status"] == "NEW"
            usdt = fake.accounts[DOC_API_KEY].balances["USDT"]
            assert usdt == [Decimal("9975"), Decimal("25")]
            assert await _order_error(c, **lim) == (-2010, "Duplicate order sent.")
            fake.set_price("ETHUSDT", "2499")  # the resting BUY fills at its price
            q = await c.get_order(symbol="ETHUSDT", origClientOrderId="mf-same")
            assert q["status"] == "FILLED"
            assert usdt == [Decimal("9975"), Decimal("0")]
            # Binance accepts the same id again once the first order is no longer open.
            assert (await c.create_order(**lim))["status"] == "FILLED"  # crosses the market now
            assert fake.duplicates() == {"mf-same": 2}
        finally:
            await c.close_connection()
    run(go)


def test_rate_limit_headers_429_retry_after_and_418_for_sending_through_it() -> None:
    async def go(fake: FakeBinance) -> None:
        c = await client_for(fake)
        try:
            await c.ping()
            assert c.response is not None
            assert c.response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
            await c.create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.0100")
            assert c.response.headers["X-MBX-ORDER-COUNT-10S"] == "1"
            assert c.response.headers["X-MBX-USED-WEIGHT-1M"] == "2"
            await c.get_exchange_info()  # weight 20: over the limit of 25
            with pytest.raises(BinanceAPIException) as e:
                await c.get_exchange_info()
            assert (e.value.status_code, e.value.code) == (429, -1003)
            assert int(e.value.response.headers["Retry-After"]) >= 1
            with pytest.raises(BinanceAPIException) as e:
                await c.ping()  # during the back-off: banned
            assert e.value.status_code == 418
            assert "IP banned until" in e.value.message
        finally:
            await c.close_connection()
    run(go, limits=RateLimits(weight_per_minute=25))


def test_faults_drop_after_accept_5xx_and_lag() -> None:
    async def go(fake: FakeBinance) -> None:
        c = await client_for(fake)
        mkt = {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.0100"}
        try:
            fake.inject(Fault("drop", "POST", "order", execute=True))
            with pytest.raises(aiohttp.ClientError):
                await c.create_order(**mkt, newClientOrderId="mf-drop")
            assert [o.client_order_id for o in fake.orders] == ["mf-drop"]  # accepted, then the connection died
            fake.inject(Fault("5xx", "POST", "order", status=503, code=-1007, execute=False))
            with pytest.raises(BinanceAPIException) as e:
                await c.create_order(**mkt, newClientOrderId="mf-503")
            assert (e.value.status_code, e.value.code) == (503, -1007)
            assert len(fake.orders) == 1
            fake.lag_queries = 2
            await c.create_order(**mkt, newClientOrderId="mf-lag")
            fake.lag_queries = 0
            for _ in range(2):
                with pytest.raises(BinanceAPIException) as e:
                    await c.get_order(symbol="ETHUSDT", origClientOrderId="mf-lag")
                assert e.value.code == -2013
            assert (await c.get_order(symbol="ETHUSDT", origClientOrderId="mf-lag"))["status"] == "FILLED"
            fake.inject(Fault("latency", "GET", "ping", seconds=0.2))
            t0 = asyncio.get_running_loop().time()
            await c.ping()
            assert asyncio.get_running_loop().time() - t0 >= 0.2
        finally:
            await c.close_connection()
    run(go)
