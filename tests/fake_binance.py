"""A strict fake of Binance's Spot REST API (aiohttp, 127.0.0.1 only) for tests and benches.

As strict as the exchange on what the executor relies on, following Binance's spot API
documentation (rest-api.md "Request Security" and "Timing security", errors.md, filters.md):

- signed requests: `X-MBX-APIKEY` must name an account; the signature is checked over the bytes
  as sent, "the query string concatenated without separator to the HTTP body", percent-encoding
  included, with the `signature` pair removed: HMAC-SHA256 (hex, case-insensitive) or Ed25519
  (base64, percent-encoded on the wire), verified with `cryptography`, not with the client's
  own library;
- timestamps against the fake's own clock: `timestamp < serverTime + 1000` and
  `serverTime - timestamp <= recvWindow` (default 5000, at most 60000), else -1021;
- parameters: unknown or duplicated ones rejected, decimals must match Binance's pattern
  (no exponent, no float repr), at most 8 decimals, client order ids `^[a-zA-Z0-9-_]{1,36}$`;
- filters from the bundled `exchange_info.json` (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE,
  NOTIONAL / MIN_NOTIONAL, PERCENT_PRICE_BY_SIDE, MAX_NUM_ORDERS) in exact decimals, -1013;
- balances (free and locked; fees in the received asset, 0.1 %), -2010 on insufficient balance;
- `newClientOrderId` unique among OPEN orders only (a filled order's id can be reused, as on
  Binance: that is why the executor's intent store, not the exchange, is the idempotency key);
- request weight and order counts in fixed windows, reported in `X-MBX-USED-WEIGHT-1M` and
  `X-MBX-ORDER-COUNT-10S` / `-1D` on each response; past the weight limit a 429 (-1003) with
  `Retry-After`, and requests sent during a 429's back-off earn a 418 ban.

Faults are injected per request (`inject`): latency, 429 with Retry-After, 418, 5xx (with or
without the order having been executed), a dropped connection after the order was accepted,
clock skew (the next signed request gets -1021), and -2013 lag (a new order is not visible to
`GET /api/v3/order` for a few queries).

Every order accepted is kept in `orders`; `duplicates()` lists client order ids that more than
one accepted order carried, which the fault-matrix tests require to be empty.

Run it alone: `python tests/fake_binance.py --port 8765` (keys printed on start).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

EXCHANGE_INFO = Path(__file__).resolve().parent.parent / "shared" / "samples" / "exchange_info.json"

# Binance's example HMAC key pair (rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order").
DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
Q8 = Decimal("0.00000001")
FEE = Decimal("0.001")

# Request weights of the endpoints the executor uses (Binance's documented values).
WEIGHTS = {("GET", "ping"): 1, ("GET", "time"): 1, ("GET", "exchangeInfo"): 20, ("GET", "account"): 20,
           ("POST", "order"): 1, ("GET", "order"): 4, ("DELETE", "order"): 1, ("GET", "openOrders"): 6,
           ("GET", "myTrades"): 20}
SIGNED = {("GET", "account"), ("POST", "order"), ("GET", "order"), ("DELETE", "order"), ("GET", "openOrders"),
          ("GET", "myTrades")}
SIGNING = {"timestamp", "recvWindow", "signature"}
ALLOWED = {
    ("GET", "ping"): set(), ("GET", "time"): set(), ("GET", "exchangeInfo"): {"symbol", "symbols"},
    ("GET", "account"): {"omitZeroBalances"},
    ("POST", "order"): {"symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
                        "newClientOrderId", "newOrderRespType", "selfTradePreventionMode"},
    ("GET", "order"): {"symbol", "orderId", "origClientOrderId"},
    ("DELETE", "order"): {"symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions"},
    ("GET", "openOrders"): {"symbol"},
    ("GET", "myTrades"): {"symbol", "orderId", "startTime", "endTime", "fromId", "limit"},
}


class ApiError(Exception):
    """One Binance error response: HTTP status, code and message, as the exchange sends them."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


def s8(x: Decimal) -> str:
    """Binance prints decimals with 8 places."""
    return f"{x.quantize(Q8):f}"


@dataclass
class Fault:
    """A fault for the next `count` requests matching `method` and `endpoint` (None: any).

    kind: "latency" (sleep `seconds`, then serve), "429", "418", "5xx" (`status`, `code`; with
    `execute` the order is executed before the error), "drop" (close the connection without a
    response; with `execute` after the order was accepted), "skew" (the fake's clock jumps by
    `skew_ms`, then serves: a signed request gets -1021). The -2013 lag is `FakeBinance.lag_queries`:
    orders placed while it is N stay invisible to `GET /api/v3/order` for their first N queries.
    """

    kind: str
    method: str | None = None
    endpoint: str | None = None
    count: int = 1
    seconds: float = 0.0
    retry_after: int = 1
    status: int = 503
    code: int | None = None
    execute: bool = False
    skew_ms: int = 0

    def matches(self, method: str, endpoint: str) -> bool:
        return (self.method in (None, method)) and (self.endpoint in (None, endpoint))


@dataclass
class Order:
    api_key: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    orig_quote_qty: Decimal
    time: int
    status: str = "NEW"
    executed_qty: Decimal = Decimal(0)
    cumulative_quote: Decimal = Decimal(0)
    update_time: int = 0
    hidden_queries: int = 0  # -2013 lag: GET /order answers "does not exist" this many more times
    locked: Decimal = Decimal(0)
    fills: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    def query_view(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
                "clientOrderId": self.client_order_id, "price": s8(self.price), "origQty": s8(self.orig_qty),
                "executedQty": s8(self.executed_qty), "cummulativeQuoteQty": s8(self.cumulative_quote),
                "status": self.status, "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
                "stopPrice": s8(Decimal(0)), "icebergQty": s8(Decimal(0)), "time": self.time,
                "updateTime": self.update_time or self.time, "isWorking": True, "workingTime": self.time,
                "origQuoteOrderQty": s8(self.orig_quote_qty), "selfTradePreventionMode": "EXPIRE_MAKER"}


@dataclass
class Account:
    api_key: str
    secret: str | None = None
    public_key: Ed25519PublicKey | None = None
    can_trade: bool = True
    balances: dict[str, list[Decimal]] = field(default_factory=dict)  # asset -> [free, locked]


@dataclass
class RateLimits:
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200000


class FakeBinance:
    """The fake exchange. `await start()` binds 127.0.0.1 on a free port; `base_url` is its root."""

    def __init__(self, *, limits: RateLimits | None = None, prices: dict[str, str] | None = None,
                 exchange_info: Path = EXCHANGE_INFO, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or RateLimits()
        self.info: dict[str, Any] = json.loads(exchange_info.read_text(encoding="utf-8"))
        self.symbols = {s["symbol"]: s for s in self.info["symbols"]}
        self.filters = {s["symbol"]: {f["filterType"]: f for f in s["filters"]} for s in self.info["symbols"]}
        self.prices = {k: Decimal(v) for k, v in (prices or {"BTCUSDT": "60000", "ETHUSDT": "3000"}).items()}
        self.accounts: dict[str, Account] = {}
        self.orders: list[Order] = []
        self._by_client_id: dict[tuple[str, str], list[Order]] = {}  # (symbol, client id) -> orders, oldest first
        self._open: dict[tuple[str, str], Order] = {}                # open orders by (symbol, client id)
        self.trades: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, endpoint, http status), as served
        self.last_params: dict[str, str] = {}  # the last request's parameters, decoded
        self.clock = clock
        self.clock_offset_ms = 0
        self.lag_queries = 0
        self._order_seq = 1000
        self._trade_seq = 5000
        self._weight_window = (-1, 0)
        self._orders_10s = (-1, 0)
        self._orders_1d = (-1, 0)
        self._backoff_until_ms = 0
        self._banned_until_ms = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- setup -------------------------------------------------------------------------------
    def add_hmac_account(self, api_key: str, secret: str, balances: dict[str, str] | None = None) -> Account:
        acct = Account(api_key, secret=secret, balances=self._balances(balances))
        self.accounts[api_key] = acct
        return acct

    def add_ed25519_account(self, api_key: str, balances: dict[str, str] | None = None) -> tuple[Account, str]:
        """A fresh Ed25519 key pair; returns the account and the private key as PKCS#8 PEM."""
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        acct = Account(api_key, public_key=key.public_key(), balances=self._balances(balances))
        self.accounts[api_key] = acct
        return acct, pem

    @staticmethod
    def _balances(b: dict[str, str] | None) -> dict[str, list[Decimal]]:
        return {a: [Decimal(v), Decimal(0)] for a, v in (b or {"USDT": "10000", "BTC": "1", "ETH": "10"}).items()}

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def now_ms(self) -> int:
        return int(self.clock() * 1000) + self.clock_offset_ms

    def duplicates(self) -> dict[str, int]:
        """Client order ids carried by more than one accepted order."""
        counts: dict[str, int] = {}
        for o in self.orders:
            counts[o.client_order_id] = counts.get(o.client_order_id, 0) + 1
        return {k: n for k, n in counts.items() if n > 1}

    def set_price(self, symbol: str, price: str) -> None:
        """Move the market: resting LIMIT orders that the new price crosses fill at their price."""
        p = self.prices[symbol] = Decimal(price)
        for o in list(self._open.values()):
            if o.symbol == symbol and ((o.side == "BUY" and p <= o.price) or
                                                  (o.side == "SELL" and p >= o.price)):
                self._fill(self.accounts[o.api_key], o, o.price, o.orig_qty - o.executed_qty, maker=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> FakeBinance:
        app = web.Application()
        app.router.add_route("*", "/api/v3/{endpoint}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- request handling --------------------------------------------------------------------
    def _take_fault(self, method: str, endpoint: str) -> Fault | None:
        for f in self.faults:
            if f.count > 0 and f.matches(method, endpoint):
                f.count -= 1
                if f.count == 0:
                    self.faults.remove(f)
                return f
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method, endpoint = request.method, request.match_info["endpoint"]
        raw_query = request.rel_url.raw_query_string
        body = await request.read()
        headers: dict[str, str] = {}
        status = 200
        try:
            if (method, endpoint) not in WEIGHTS:
                raise ApiError(404, -1000, "Unknown endpoint.")
            fault = self._take_fault(method, endpoint)
            if fault is not None and fault.kind == "latency":
                await asyncio.sleep(fault.seconds)
                fault = None
            if fault is not None and fault.kind == "skew":
                self.clock_offset_ms += fault.skew_ms
                fault = None
            now = self.now_ms()
            self._check_ban(now)
            if fault is not None and fault.kind in ("429", "418"):
                self._ban(fault.kind, fault.retry_after, now)
            headers.update(self._count_weight(WEIGHTS[(method, endpoint)], now))
            params = self._params(raw_query, body)
            self.last_params = params
            acct = self._authenticate(request, method, endpoint, raw_query, body, params, now)
            executes = fault is None or fault.execute
            if fault is not None and not executes:
                if fault.kind == "drop":
                    return self._drop(request)
                raise self._server_error(fault)
            payload = self._dispatch(method, endpoint, params, acct, now, headers)
            if fault is not None:  # executed, then the failure
                if fault.kind == "drop":
                    return self._drop(request)
                raise self._server_error(fault)
        except ApiError as e:
            status = e.status
            headers.update(e.headers)
            payload = {"code": e.code, "msg": e.msg}
        self.requests.append((method, endpoint, status))
        return web.json_response(payload, status=status, headers=headers)

    def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the TCP connection without a response (what a client sees as a reset)."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        self.requests.append((request.method, request.match_info["endpoint"], 0))
        return web.Response(status=500)

    @staticmethod
    def _server_error(fault: Fault) -> ApiError:
        if fault.code == -1007:
            return ApiError(fault.status, -1007, "Timeout waiting for response from backend server. "
                                                 "Send status unknown; execution status unknown.")
        return ApiError(fault.status, fault.code or -1000, "An unknown error occurred while processing the request.")

    def _check_ban(self, now: int) -> None:
        if now < self._banned_until_ms:
            raise self._ban_error(now)
        if now < self._backoff_until_ms:
            # Sending during a 429's back-off: Binance answers with an IP ban.
            self._banned_until_ms = now + 120_000
            raise self._ban_error(now)

    def _ban_error(self, now: int) -> ApiError:
        retry = max(1, -(-(self._banned_until_ms - now) // 1000))
        return ApiError(418, -1003, f"Way too much request weight used; IP banned until {self._banned_until_ms}. "
                                    "Please use WebSocket Streams for live updates to avoid bans.",
                        {"Retry-After": str(retry)})

    def _ban(self, kind: str, retry_after: int, now: int) -> None:
        if kind == "418":
            self._banned_until_ms = now + retry_after * 1000
            raise self._ban_error(now)
        self._backoff_until_ms = now + retry_after * 1000
        raise ApiError(429, -1003, f"Too much request weight used; current limit is {self.limits.weight_per_minute} "
                                   "request weight per 1 MINUTE. Please use WebSocket Streams for live updates to "
                                   "avoid polling the API.", {"Retry-After": str(retry_after)})

    def _count_weight(self, weight: int, now: int) -> dict[str, str]:
        minute = now // 60_000
        w_minute, used = self._weight_window
        used = (used if w_minute == minute else 0) + weight
        self._weight_window = (minute, used)
        headers = {"X-MBX-USED-WEIGHT": str(used), "X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.limits.weight_per_minute:
            retry = max(1, -(-((minute + 1) * 60_000 - now) // 1000))
            self._backoff_until_ms = (minute + 1) * 60_000
            raise ApiError(429, -1003, f"Too much request weight used; current limit is "
                                       f"{self.limits.weight_per_minute} request weight per 1 MINUTE. Please use "
                                       "WebSocket Streams for live updates to avoid polling the API.",
                           {**headers, "Retry-After": str(retry)})
        return headers

    def _count_order(self, now: int) -> dict[str, str]:
        w10, n10 = self._orders_10s
        wd, nd = self._orders_1d
        n10 = (n10 if w10 == now // 10_000 else 0) + 1
        nd = (nd if wd == now // 86_400_000 else 0) + 1
        if n10 > self.limits.orders_per_10s or nd > self.limits.orders_per_day:
            limit, per = ((self.limits.orders_per_10s, "10 SECOND") if n10 > self.limits.orders_per_10s
                          else (self.limits.orders_per_day, "1 DAY"))
            raise ApiError(429, -1015, f"Too many new orders; current limit is {limit} orders per {per}.",
                           {"Retry-After": "10"})
        self._orders_10s = (now // 10_000, n10)
        self._orders_1d = (now // 86_400_000, nd)
        return {"X-MBX-ORDER-COUNT-10S": str(n10), "X-MBX-ORDER-COUNT-1D": str(nd)}

    @staticmethod
    def _params(raw_query: str, body: bytes) -> dict[str, str]:
        params: dict[str, str] = {}
        for part in (raw_query, body.decode("utf-8", "replace")):
            if not part:
                continue
            try:
                pairs = parse_qsl(part, keep_blank_values=True, strict_parsing=True)
            except ValueError as exc:
                raise ApiError(400, -1100, "Illegal characters found in a parameter.") from exc
            for k, v in pairs:
                if k in params:
                    raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
                params[k] = v
        return params

    def _authenticate(self, request: web.Request, method: str, endpoint: str, raw_query: str, body: bytes,
                      params: dict[str, str], now: int) -> Account | None:
        key = (method, endpoint)
        allowed = ALLOWED[key] | (SIGNING if key in SIGNED else set())
        extra = [k for k in params if k not in allowed]
        if extra:
            raise ApiError(400, -1104, f"Not all sent parameters were read; read '{len(params) - len(extra)}' "
                                       f"parameter(s) but was sent '{len(params)}'.")
        if key not in SIGNED:
            return None
        api_key = request.headers.get("X-MBX-APIKEY", "")
        if not api_key:
            raise ApiError(401, -2014, "API-key format invalid.")
        acct = self.accounts.get(api_key)
        if acct is None:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        for name in ("timestamp", "signature"):
            if not params.get(name):
                raise ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        if not verify_signature(acct, raw_query, body):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        try:
            ts = int(params["timestamp"])
            window = Decimal(params.get("recvWindow", "5000"))
        except (ValueError, ArithmeticError) as exc:
            raise ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                                       "or malformed.") from exc
        if window > 60000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        if ts >= now + 1000:
            raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - ts > window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return acct

    # -- endpoints ---------------------------------------------------------------------------
    def _dispatch(self, method: str, endpoint: str, p: dict[str, str], acct: Account | None, now: int,
                  headers: dict[str, str]) -> Any:
        if endpoint == "ping":
            return {}
        if endpoint == "time":
            return {"serverTime": now}
        if endpoint == "exchangeInfo":
            return self._exchange_info(p, now)
        assert acct is not None
        if endpoint == "account":
            return self._account(acct, p, now)
        if endpoint == "order" and method == "POST":
            return self._new_order(acct, p, now, headers)
        if endpoint == "order" and method == "GET":
            return self._find(p, query=True).query_view()
        if endpoint == "order" and method == "DELETE":
            return self._cancel(acct, p, now)
        if endpoint == "openOrders":
            sym = p.get("symbol")
            if sym is not None:
                self._symbol(sym)
            return [o.query_view() for o in self._open.values() if sym is None or o.symbol == sym]
        return self._my_trades(p)

    def _exchange_info(self, p: dict[str, str], now: int) -> dict[str, Any]:
        wanted: list[str] | None = None
        if "symbol" in p:
            wanted = [p["symbol"]]
        elif "symbols" in p:
            try:
                wanted = json.loads(p["symbols"])
            except ValueError as exc:
                raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.") from exc
        if wanted is not None:
            for s in wanted:
                self._symbol(s)
        lim = self.limits
        return {**self.info, "serverTime": now, "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": lim.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": lim.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": lim.orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}],
            "symbols": [s for s in self.info["symbols"] if wanted is None or s["symbol"] in wanted]}

    def _account(self, acct: Account, p: dict[str, str], now: int) -> dict[str, Any]:
        omit = p.get("omitZeroBalances") == "true"
        bal = [{"asset": a, "free": s8(f), "locked": s8(lk)} for a, (f, lk) in sorted(acct.balances.items())
               if not (omit and f == 0 and lk == 0)]
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                    "seller": "0.00000000"},
                "canTrade": acct.can_trade, "canWithdraw": False, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now, "accountType": "SPOT",
                "balances": bal, "permissions": ["SPOT"], "uid": 354937868}

    def _symbol(self, sym: str) -> dict[str, Any]:
        if sym not in self.symbols:
            raise ApiError(400, -1121, "Invalid symbol.")
        return self.symbols[sym]

    @staticmethod
    def _decimal(p: dict[str, str], name: str) -> Decimal | None:
        v = p.get(name)
        if v is None:
            return None
        if not DECIMAL_RE.match(v):
            raise ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                       "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
        d = Decimal(v)
        if d != d.quantize(Q8, rounding=ROUND_DOWN):
            raise ApiError(400, -1111, f"Parameter '{name}' has too much precision.")
        return d

    def _reject_filter(self, name: str) -> ApiError:
        return ApiError(400, -1013, f"Filter failure: {name}")

    def _check_filters(self, sym: str, otype: str, side: str, qty: Decimal | None, quote: Decimal | None,
                       price: Decimal | None) -> None:
        f = self.filters[sym]
        avg = self.prices[sym]
        if price is not None and "PRICE_FILTER" in f:
            pf = f["PRICE_FILTER"]
            lo, hi, tick = Decimal(pf["minPrice"]), Decimal(pf["maxPrice"]), Decimal(pf["tickSize"])
            if (lo > 0 and price < lo) or (hi > 0 and price > hi) or (tick > 0 and (price - lo) % tick != 0):
                raise self._reject_filter("PRICE_FILTER")
        if price is not None and "PERCENT_PRICE_BY_SIDE" in f:
            pp = f["PERCENT_PRICE_BY_SIDE"]
            up, down = ((pp["bidMultiplierUp"], pp["bidMultiplierDown"]) if side == "BUY"
                        else (pp["askMultiplierUp"], pp["askMultiplierDown"]))
            if price > avg * Decimal(up) or price < avg * Decimal(down):
                raise self._reject_filter("PERCENT_PRICE_BY_SIDE")
        if qty is not None:
            for name in ("LOT_SIZE",) + (("MARKET_LOT_SIZE",) if otype == "MARKET" else ()):
                if name not in f:
                    continue
                lf = f[name]
                lo, hi, step = Decimal(lf["minQty"]), Decimal(lf["maxQty"]), Decimal(lf["stepSize"])
                if qty <= 0 and name == "LOT_SIZE":
                    raise self._reject_filter(name)
                if (lo > 0 and qty < lo) or (hi > 0 and qty > hi) or (step > 0 and (qty - lo) % step != 0):
                    raise self._reject_filter(name)
        notional = quote if quote is not None else (qty or Decimal(0)) * (price if price is not None else avg)
        market = otype == "MARKET"
        if "NOTIONAL" in f:
            nf = f["NOTIONAL"]
            if (not market or nf["applyMinToMarket"]) and notional < Decimal(nf["minNotional"]):
                raise self._reject_filter("NOTIONAL")
            if (not market or nf["applyMaxToMarket"]) and notional > Decimal(nf["maxNotional"]):
                raise self._reject_filter("NOTIONAL")
        if "MIN_NOTIONAL" in f:
            mf = f["MIN_NOTIONAL"]
            if (not market or mf["applyToMarket"]) and notional < Decimal(mf["minNotional"]):
                raise self._reject_filter("MIN_NOTIONAL")
        if not market and "MAX_NUM_ORDERS" in f:
            n = sum(1 for o in self._open.values() if o.symbol == sym)
            if n >= int(f["MAX_NUM_ORDERS"]["maxNumOrders"]):
                raise self._reject_filter("MAX_NUM_ORDERS")

    def _new_order(self, acct: Account, p: dict[str, str], now: int, headers: dict[str, str]) -> dict[str, Any]:
        for name in ("symbol", "side", "type"):
            if not p.get(name):
                raise ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        sym, side, otype = p["symbol"], p["side"], p["type"]
        info = self._symbol(sym)
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1117, "Invalid side.")
        if otype not in ("MARKET", "LIMIT"):
            raise ApiError(400, -1116, "Invalid orderType.")
        qty, quote, price = self._decimal(p, "quantity"), self._decimal(p, "quoteOrderQty"), self._decimal(p, "price")
        tif = p.get("timeInForce", "")
        if otype == "LIMIT":
            for name, v in (("timeInForce", tif or None), ("quantity", qty), ("price", price)):
                if v is None:
                    raise ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                               "or malformed.")
            if quote is not None:
                raise ApiError(400, -1106, "Parameter 'quoteOrderQty' sent when not required.")
            if tif not in ("GTC", "IOC", "FOK"):
                raise ApiError(400, -1115, "Invalid timeInForce.")
        else:
            if (qty is None) == (quote is None):
                if qty is None:
                    raise ApiError(400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were "
                                               "empty/null!")
                raise ApiError(400, -1106, "Parameter 'quoteOrderQty' sent when not required.")
            for name in ("price", "timeInForce"):
                if name in p:
                    raise ApiError(400, -1106, f"Parameter '{name}' sent when not required.")
            if quote is not None and not info.get("quoteOrderQtyMarketAllowed", True):
                raise ApiError(400, -1013, "Quote order qty market orders are not support for this symbol.")
        coid = p.get("newClientOrderId") or f"fake{self._order_seq + 1}"
        if not CLIENT_ID_RE.match(coid):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                                       "'^[a-zA-Z0-9-_]{1,36}$'.")
        resp_type = p.get("newOrderRespType", "FULL")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'newOrderRespType'.")
        mkt = self.prices[sym]
        if otype == "MARKET" and quote is not None:
            step = Decimal(self.filters[sym]["LOT_SIZE"]["stepSize"])
            fill_qty = (quote / mkt).quantize(step.normalize(), rounding=ROUND_DOWN) if step > 0 else quote / mkt
            self._check_filters(sym, otype, side, None, quote, None)
            if fill_qty <= 0:
                raise self._reject_filter("LOT_SIZE")
        else:
            assert qty is not None
            self._check_filters(sym, otype, side, qty, None, price)
            fill_qty = qty
        if (sym, coid) in self._open:
            raise ApiError(400, -2010, "Duplicate order sent.")
        base, quote_asset = info["baseAsset"], info["quoteAsset"]
        fills_now = otype == "MARKET" or (price is not None and ((side == "BUY" and price >= mkt) or
                                                                  (side == "SELL" and price <= mkt)))
        exec_price = mkt if fills_now else (price or mkt)
        need_asset, need = ((quote_asset, fill_qty * (price if otype == "LIMIT" and price else mkt)) if side == "BUY"
                            else (base, fill_qty))
        if acct.balances.get(need_asset, [Decimal(0), Decimal(0)])[0] < need:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        headers.update(self._count_order(now))
        self._order_seq += 1
        order = Order(acct.api_key, sym, self._order_seq, coid, side, otype, tif if otype == "LIMIT" else "GTC",
                      price or Decimal(0), fill_qty, quote or Decimal(0), now, hidden_queries=self.lag_queries)
        self.orders.append(order)
        self._by_client_id.setdefault((sym, coid), []).append(order)
        self._open[(sym, coid)] = order
        if fills_now:
            self._fill(acct, order, exec_price, fill_qty, maker=False)
        else:
            order.locked = need
            bal = acct.balances.setdefault(need_asset, [Decimal(0), Decimal(0)])
            bal[0] -= need
            bal[1] += need
        ack = {"symbol": sym, "orderId": order.order_id, "orderListId": -1, "clientOrderId": coid,
               "transactTime": now}
        if resp_type == "ACK":
            return ack
        result = {**ack, "price": s8(order.price), "origQty": s8(order.orig_qty),
                  "executedQty": s8(order.executed_qty), "origQuoteOrderQty": s8(order.orig_quote_qty),
                  "cummulativeQuoteQty": s8(order.cumulative_quote), "status": order.status,
                  "timeInForce": order.time_in_force, "type": otype, "side": side, "workingTime": now,
                  "selfTradePreventionMode": "EXPIRE_MAKER"}
        if resp_type == "FULL":
            result["fills"] = list(order.fills)
        return result

    def _fill(self, acct: Account, o: Order, price: Decimal, qty: Decimal, *, maker: bool) -> None:
        info = self.symbols[o.symbol]
        base, quote = info["baseAsset"], info["quoteAsset"]
        cost = (qty * price).quantize(Q8)
        b = acct.balances.setdefault(base, [Decimal(0), Decimal(0)])
        q = acct.balances.setdefault(quote, [Decimal(0), Decimal(0)])
        if o.side == "BUY":
            fee, fee_asset = (qty * FEE).quantize(Q8), base
            if o.locked:
                q[1] -= o.locked
                q[0] += o.locked - cost
            else:
                q[0] -= cost
            b[0] += qty - fee
        else:
            fee, fee_asset = (cost * FEE).quantize(Q8), quote
            if o.locked:
                b[1] -= o.locked
                b[0] += o.locked - qty
            else:
                b[0] -= qty
            q[0] += cost - fee
        o.locked = Decimal(0)
        self._trade_seq += 1
        o.executed_qty += qty
        o.cumulative_quote += cost
        o.status = "FILLED" if o.executed_qty >= o.orig_qty else "PARTIALLY_FILLED"
        if not o.open:
            self._open.pop((o.symbol, o.client_order_id), None)
        o.update_time = self.now_ms()
        o.fills.append({"price": s8(price), "qty": s8(qty), "commission": s8(fee), "commissionAsset": fee_asset,
                        "tradeId": self._trade_seq})
        self.trades.append({"symbol": o.symbol, "id": self._trade_seq, "orderId": o.order_id, "orderListId": -1,
                            "price": s8(price), "qty": s8(qty), "quoteQty": s8(cost), "commission": s8(fee),
                            "commissionAsset": fee_asset, "time": o.update_time, "isBuyer": o.side == "BUY",
                            "isMaker": maker, "isBestMatch": True})

    def _find(self, p: dict[str, str], *, query: bool) -> Order:
        sym = p.get("symbol")
        if not sym:
            raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        self._symbol(sym)
        oid, coid = p.get("orderId"), p.get("origClientOrderId")
        if oid is None and coid is None:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if oid is not None:
            match = [o for o in self.orders if o.symbol == sym and str(o.order_id) == oid]
        else:
            match = self._by_client_id.get((sym, coid or ""), [])
        if not match:
            raise ApiError(400, -2013 if query else -2011, "Order does not exist." if query else "Unknown order sent.")
        order = match[-1]
        if query and order.hidden_queries > 0:
            order.hidden_queries -= 1
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def _cancel(self, acct: Account, p: dict[str, str], now: int) -> dict[str, Any]:
        o = self._find(p, query=False)
        if not o.open:
            raise ApiError(400, -2011, "Unknown order sent.")
        info = self.symbols[o.symbol]
        asset = info["quoteAsset"] if o.side == "BUY" else info["baseAsset"]
        bal = acct.balances[asset]
        bal[1] -= o.locked
        bal[0] += o.locked
        o.locked = Decimal(0)
        o.status, o.update_time = "CANCELED", now
        self._open.pop((o.symbol, o.client_order_id), None)
        return {"symbol": o.symbol, "origClientOrderId": o.client_order_id, "orderId": o.order_id,
                "orderListId": -1, "clientOrderId": p.get("newClientOrderId") or f"cancel{o.order_id}",
                "transactTime": now, "price": s8(o.price), "origQty": s8(o.orig_qty),
                "executedQty": s8(o.executed_qty), "origQuoteOrderQty": s8(o.orig_quote_qty),
                "cummulativeQuoteQty": s8(o.cumulative_quote), "status": o.status, "timeInForce": o.time_in_force,
                "type": o.type, "side": o.side, "selfTradePreventionMode": "EXPIRE_MAKER"}

    def _my_trades(self, p: dict[str, str]) -> list[dict[str, Any]]:
        sym = p.get("symbol")
        if not sym:
            raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        self._symbol(sym)
        out = [t for t in self.trades if t["symbol"] == sym]
        if "orderId" in p:
            out = [t for t in out if str(t["orderId"]) == p["orderId"]]
        if "fromId" in p:
            out = [t for t in out if t["id"] >= int(p["fromId"])]
        if "startTime" in p:
            out = [t for t in out if t["time"] >= int(p["startTime"])]
        if "endTime" in p:
            out = [t for t in out if t["time"] <= int(p["endTime"])]
        limit = min(int(p.get("limit", "500")), 1000)
        return out[:limit] if "fromId" in p or "startTime" in p else out[-limit:]


def signature_payload(raw_query: str, body: bytes) -> tuple[bytes, str | None]:
    """Binance's signature payload: the query string concatenated without separator to the body,
    as sent (percent-encoded), with the `signature=` pair taken out; and the signature as sent."""
    signature: str | None = None
    parts: list[bytes] = []
    for chunk in (raw_query.encode("ascii", "strict"), body):
        kept = []
        for pair in chunk.split(b"&") if chunk else []:
            if pair.startswith(b"signature="):
                signature = pair[len(b"signature="):].decode("ascii", "replace")
            else:
                kept.append(pair)
        parts.append(b"&".join(kept))
    return b"".join(parts), signature


def hmac_hex(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def verify_signature(acct: Account, raw_query: str, body: bytes) -> bool:
    try:
        payload, sig = signature_payload(raw_query, body)
    except UnicodeEncodeError:
        return False
    if sig is None:
        return False
    if acct.secret is not None:
        return hmac.compare_digest(hmac_hex(acct.secret, payload), sig.lower())
    if acct.public_key is None:
        return False
    try:
        acct.public_key.verify(base64.b64decode(unquote_to_bytes(sig), validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True


class FakeBinanceThread:
    """The fake on its own event loop in a background thread, for code under test that runs its
    own loop (a CLI command's `asyncio.run`). `with FakeBinanceThread() as fake: ...`."""

    def __init__(self, **kw: Any) -> None:
        import threading

        self.fake = FakeBinance(**kw)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-binance", daemon=True)

    def __enter__(self) -> FakeBinance:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _serve(port: int, limits: RateLimits, balances: dict[str, str] | None) -> None:
    fake = FakeBinance(limits=limits)
    fake.add_hmac_account(DOC_API_KEY, DOC_SECRET, balances)
    await fake.start(port)
    # The one line a parent process waits for (the bench reads the port from it).
    print(f"fake Binance on {fake.base_url}; API key {DOC_API_KEY}, HMAC secret {DOC_SECRET}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    ap.add_argument("--weight-per-minute", type=int, default=6000)
    ap.add_argument("--orders-per-10s", type=int, default=100)
    ap.add_argument("--orders-per-day", type=int, default=200000)
    ap.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                    help="the account's starting balances (default USDT=10000 BTC=1 ETH=10)")
    a = ap.parse_args()
    bal = dict(b.split("=", 1) for b in a.balance) or None
    asyncio.run(_serve(a.port, RateLimits(a.weight_per_minute, a.orders_per_10s, a.orders_per_day), bal))
