"""The Binance REST client (python-binance's AsyncClient underneath) against the strict fake:
base URL before the first request, time sync and -1021, per-request headers, 429/418, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fake_binance import DOC_API_KEY, DOC_SECRET, FakeBinance, Fault, RateLimits

from shared.adapters.binance.credentials import Credentials, CredentialsError
from shared.adapters.binance.errors import Ambiguous, Banned, BinanceError, NotFound, RateLimited, Rejected
from shared.adapters.binance.exchange_info import ExchangeInfoCache
from shared.adapters.binance.rest import PRODUCTION_URL, TESTNET_URL, BinanceRest, Exchange, resolve_base_url
from shared.adapters.binance.throttle import RateLimit, Throttler, ThrottlerBanned, rate_limits_of

CREDS = Credentials(DOC_API_KEY, secret=DOC_SECRET)


def run(fn: Callable[[FakeBinance, BinanceRest], Awaitable[Any]], *, errors: list[BinanceError] | None = None,
        **kw: Any) -> Any:
    async def main() -> Any:
        async with FakeBinance(**kw) as fake:
            fake.add_hmac_account(DOC_API_KEY, DOC_SECRET)
            rest = await BinanceRest.connect(CREDS, base_url=fake.base_url,
                                             on_error=errors.append if errors is not None else None)
            async with rest:
                return await fn(fake, rest)
    return asyncio.run(main())


def test_base_url_resolution() -> None:
    assert resolve_base_url(environ={}) == PRODUCTION_URL
    assert resolve_base_url(testnet=True, environ={}) == TESTNET_URL
    assert resolve_base_url(environ={"BINANCE_BASE_URL": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    assert resolve_base_url("http://127.0.0.1:8/api", environ={"BINANCE_BASE_URL": "http://x:9"}) == \
        "http://127.0.0.1:8"
    with pytest.raises(ValueError, match="not both"):
        resolve_base_url("http://127.0.0.1:8", testnet=True, environ={})
    with pytest.raises(ValueError, match="http"):
        resolve_base_url("127.0.0.1:8", environ={})


def test_credentials_from_env_and_redacted() -> None:
    c = Credentials.from_env({"BINANCE_API_KEY": "k-123", "BINANCE_API_SECRET": "s-456"})
    assert c.kind == "hmac" and "k-123" not in repr(c) and "s-456" not in repr(c) + str(c)
    with pytest.raises(CredentialsError, match="BINANCE_API_KEY"):
        Credentials.from_env({})
    with pytest.raises(CredentialsError, match="not both"):
        Credentials.from_env({"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s", "BINANCE_PRIVATE_KEY_FILE": "f"})
    with pytest.raises(CredentialsError, match="cannot be read") as e:
        Credentials.from_env({"BINANCE_API_KEY": "k", "BINANCE_PRIVATE_KEY_FILE": "/nonexistent/secret-path"})
    assert "secret-path" not in str(e.value)


@pytest.mark.parametrize("skew_s", [0, 30])
def test_first_request_goes_to_the_base_url_and_offset_is_synced(skew_s: int) -> None:
    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        assert fake.requests[0] == ("GET", "time", 200)  # nothing was sent anywhere before
        assert abs(rest.offset_ms - skew_s * 1000) < 200
        assert rest.client.REQUEST_RECVWINDOW == 5000
        acct = await rest.account()
        assert acct.can_trade and fake.last_params["recvWindow"] == "5000"
    run(go, clock=lambda: time.time() + skew_s)  # the fake's clock is skew_s ahead of this machine's


def test_minus_1021_resyncs_resigns_and_retries_once() -> None:
    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        fake.inject(Fault("skew", "GET", "account", skew_ms=20_000))
        assert (await rest.account()).can_trade
        assert fake.requests[-3:] == [("GET", "account", 400), ("GET", "time", 200), ("GET", "account", 200)]
        assert rest.stats.time_syncs == 2 and abs(rest.offset_ms - 20_000) < 200
    run(go)


def test_headers_are_read_per_request_under_concurrency() -> None:
    seen: list[tuple[str, Exchange]] = []

    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        rest.on_exchange = lambda name, ex: seen.append((name, ex))
        calls = []
        for i in range(30):
            if i % 3 == 0:
                calls.append(rest.new_order({"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET",
                                             "quantity": "0.0100", "newClientOrderId": f"mf-c{i}"}))
            else:
                calls.append(rest.ping())
        fake.inject(Fault("latency", "POST", "order", count=5, seconds=0.05))
        await asyncio.gather(*calls)
        orders = [ex for name, ex in seen if name == "order"]
        pings = [ex for name, ex in seen if name == "ping"]
        assert len(orders) == 10 and len(pings) == 20
        assert all("X-MBX-ORDER-COUNT-10S" in ex.headers for ex in orders)
        assert not any("X-MBX-ORDER-COUNT-10S" in ex.headers for ex in pings)
        # The 10 s window is a fixed one, as Binance's: a run that crosses its boundary restarts at 1,
        # so the per-order sequence is checked on the daily counter.
        assert sorted(int(ex.headers["X-MBX-ORDER-COUNT-1D"]) for ex in orders) == list(range(1, 11))
        tens = sorted(int(ex.headers["X-MBX-ORDER-COUNT-10S"]) for ex in orders)
        assert tens == list(range(1, 11)) or tens.count(1) == 2
        assert all(ex.start_ns <= ex.written_ns <= ex.end_ns for ex in orders)
        used = rest.throttler.used()
        assert used["ORDERS_1D"] == 10 and used["REQUEST_WEIGHT_1M"] >= 31
    run(go)


def test_429_pauses_sending_for_retry_after_and_nothing_is_sent_through_it() -> None:
    errors: list[BinanceError] = []

    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        fake.inject(Fault("429", "GET", "account", retry_after=1))
        with pytest.raises(RateLimited) as e:
            await rest.account()
        assert e.value.retry_after_s == 1 and e.value.http_status == 429
        t0 = asyncio.get_running_loop().time()
        await rest.ping()  # waits out the Retry-After instead of earning a 418
        assert asyncio.get_running_loop().time() - t0 >= 0.9
        assert [s for _, _, s in fake.requests].count(418) == 0
    run(go, errors=errors)
    assert [type(e) for e in errors] == [RateLimited]


def test_418_bans_reports_and_sends_nothing_until_it_lapses() -> None:
    errors: list[BinanceError] = []

    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        fake.inject(Fault("418", "POST", "order", retry_after=120))
        with pytest.raises(Banned) as e:
            await rest.new_order({"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.0100"})
        assert e.value.retry_after_s == 120 and rest.stats.bans == 1
        sent = len(fake.requests)
        with pytest.raises(Banned):
            await rest.ping()
        assert len(fake.requests) == sent
    run(go, errors=errors)
    assert isinstance(errors[0], Banned) and errors[0].http_status == 418


def test_rejections_carry_binances_reason_and_ambiguity_is_ambiguous() -> None:
    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        with pytest.raises(Rejected) as e:
            await rest.new_order({"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                  "quantity": "0.00001", "price": "2500.00"})
        assert (e.value.code, e.value.reason) == (-1013, "Filter failure: LOT_SIZE")
        with pytest.raises(Rejected) as e:
            await rest.new_order({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "50000"})
        assert (e.value.code, e.value.reason) == (-2010, "Account has insufficient balance for requested action.")
        with pytest.raises(NotFound):
            await rest.get_order("ETHUSDT", "mf-none")
        fake.inject(Fault("drop", "POST", "order", execute=True))
        with pytest.raises(Ambiguous):
            await rest.new_order({"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.0100",
                                  "newClientOrderId": "mf-amb"})
        view = await rest.get_order("ETHUSDT", "mf-amb")
        assert view.status == "FILLED" and str(view.executed_qty) == "0.01000000"
        fake.inject(Fault("5xx", "GET", "account", status=502))
        with pytest.raises(Ambiguous):
            await rest.account()
    run(go)


def test_exchange_info_sets_budgets_and_cache_refreshes_hourly_and_on_invalidate() -> None:
    async def go(fake: FakeBinance, rest: BinanceRest) -> None:
        t = [0.0]
        cache = ExchangeInfoCache(rest, ["ETHUSDT"], monotonic=lambda: t[0])
        f = await cache.filters()
        assert list(f) == ["ETHUSDT"] and f["ETHUSDT"].lot_step_str == "0.00010000"
        assert {lim.name: lim.limit for lim in rest.throttler.limits}["REQUEST_WEIGHT_1M"] == 500
        await cache.filters()
        t[0] = 3599.0
        await cache.filters()
        assert cache.refreshes == 1
        t[0] = 3600.0
        await cache.filters()
        assert cache.refreshes == 2
        cache.invalidate()
        await cache.filters()
        assert cache.refreshes == 3
    run(go, limits=RateLimits(weight_per_minute=500))


def test_try_acquire_counts_only_a_call_that_may_go_now() -> None:
    """The order path's synchronous check: it counts a call with room in every window, and for a
    full window, a pause or a ban counts nothing (the caller then awaits `acquire`)."""
    now = [60_000 * 10]
    limits = rate_limits_of({"rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10}]})
    th = Throttler(limits, budget_share=0.9, now_ms=lambda: now[0])
    weight, orders = th._windows  # budgets 90 and 9
    assert all(th.try_acquire(1, 1) for _ in range(9))
    assert (weight.used, orders.used) == (9, 9)
    assert not th.try_acquire(1, 1)                 # the order window is full
    assert (weight.used, orders.used) == (9, 9)     # and nothing was counted
    assert th.try_acquire(5)                        # a call with no order still fits
    assert (weight.used, orders.used) == (14, 9)
    now[0] += 10_000                                # the next 10 s window
    assert th.try_acquire(1, 1) and orders.used == 1
    th.pause(2)
    assert not th.try_acquire(1) and weight.used == 15
    now[0] += 2_000
    assert th.try_acquire(1) and weight.used == 16
    th.ban(120)
    with pytest.raises(ThrottlerBanned):
        th.try_acquire(1)


def test_throttler_waits_for_the_window_and_follows_the_exchanges_count() -> None:
    now = [60_000 * 10]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += int(s * 1000)

    limits = rate_limits_of({"rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10}]})
    assert limits[1] == RateLimit("ORDERS", "SECOND", 10, 10) and limits[1].header == "x-mbx-order-count-10s"
    th = Throttler(limits, budget_share=0.9, now_ms=lambda: now[0], sleep=sleep)

    async def go() -> None:
        for _ in range(9):
            await th.acquire(1, 1)
        assert not slept
        await th.acquire(1, 1)  # the 10th order waits for the next 10 s window
        assert slept == [10.0]
        th.observe({"X-MBX-USED-WEIGHT-1M": "90"})  # other processes on this IP spent weight
        await th.acquire(1)
        assert slept[-1] == pytest.approx(50.0)
        th.pause(2)
        await th.acquire(1)
        assert slept[-1] == 2.0
        th.ban(120)
        with pytest.raises(ThrottlerBanned):
            await th.acquire(1)
    asyncio.run(go())


@pytest.mark.parametrize("pairs", [
    [("symbol", "ETHUSDT"), ("quantity", "0.0033"), ("newClientOrderId", "mf-00ab_-"), ("signature", "ab12")],
    [("note", "a b+c/d&e=f%é"), ("x", "")],
])
def test_form_body_is_the_bytes_aiohttp_formdata_makes(pairs: list[tuple[str, str]]) -> None:
    import aiohttp

    from shared.adapters.binance.rest import form_payload

    ours, theirs = form_payload(pairs), aiohttp.FormData(pairs)()
    assert ours.decode() == theirs.decode() and ours.content_type == theirs.content_type
    for other in ([("a", 1)], [], b"raw", "text", {"a": "b"}, None):
        assert form_payload(other) is other  # left to aiohttp as it is
