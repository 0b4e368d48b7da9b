"""Binance exchange filters: parse an `exchangeInfo` document and quantize orders toward safety.

Filter semantics follow Binance's spot API documentation (filters.md): PRICE_FILTER (min/max
price, tick), LOT_SIZE and MARKET_LOT_SIZE (min/max quantity, step; a 0 disables a rule),
MIN_NOTIONAL / NOTIONAL (market orders only when `applyToMarket` / `applyMinToMarket` /
`applyMaxToMarket`, priced at the recent average), PERCENT_PRICE_BY_SIDE (price within multipliers
of the average price, per side) and MAX_NUM_ORDERS (open orders per symbol).

Rounding always goes the safe way: quantities down (a sell never exceeds the free balance, a buy
never exceeds its budget), a BUY limit price down to the tick, a SELL limit price up. An order
that cannot satisfy a filter after rounding is rejected with the filter's name, never sent.
Market orders are checked against the last traded price, the closest stand-in this process has
for Binance's `avgPriceMins` average.

The bundled sample `shared/samples/exchange_info.json` is hand-written in the exact shape of
`GET /api/v3/exchangeInfo?symbols=["BTCUSDT","ETHUSDT"]`, with the filter values Binance published
for those symbols in 2024-2025 (tick 0.01, steps 0.00001 BTC and 0.0001 ETH, 5 USDT minimum
notional, percent-price-by-side 0.2-5, 200 open orders); MARKET_LOT_SIZE's maxQty changes daily
on the exchange and is an example value. In production the executor fetches the live document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from .reasons import Failure, Reason

BUNDLED_EXCHANGE_INFO = Path(__file__).resolve().parent.parent / "samples" / "exchange_info.json"



def decimals_of(step: str | Decimal) -> int:
    """Decimal places of a step string such as "0.00001000" (5); 0 for whole steps or 0."""
    d = Decimal(step)
    if d == 0:
        return 0
    exp = d.normalize().as_tuple().exponent
    return max(0, -int(exp))


def floor_to(x: float, step: float, dp: int) -> float:
    """The largest multiple of `step` not above `x`, as the shortest float with `dp` decimals.

    Rounds to the nearest multiple first (so a value already on the grid stays exactly as it is:
    quantizing twice changes nothing), then steps down once if that landed above `x`. A step of 0
    leaves `x` unchanged.
    """
    if step <= 0:
        return x
    units = round(x / step)
    q = round(units * step, dp)
    if q > x:
        q = round((units - 1) * step, dp)
    return q if q > 0 else 0.0


def ceil_to(x: float, step: float, dp: int) -> float:
    """The smallest multiple of `step` not below `x` (a SELL limit price never drops)."""
    if step <= 0:
        return x
    units = round(x / step)
    q = round(units * step, dp)
    if q < x:
        q = round((units + 1) * step, dp)
    return q


def _floor_units(x: float, scale: int, k: int) -> float:
    """floor_to for a step of k / scale (k, scale integers): integer arithmetic and one correctly
    rounded division, cheaper than `round()` on the hot path, with the same guarantees."""
    units = round(x * scale / k)
    q = units * k / scale
    if q > x:
        q = (units - 1) * k / scale
    return q if q > 0 else 0.0


def _scaled(step: str) -> tuple[int, int]:
    """(scale, k) with step == k / scale exactly, from the step's decimal string; (1, 0) for 0."""
    d = Decimal(step).normalize()
    if d == 0:
        return 1, 0
    dp = decimals_of(step)
    scale = 10 ** dp
    return scale, int(d * scale)


def fmt(x: float, dp: int) -> str:
    """The decimal string an order carries on the wire (Binance rejects excess precision)."""
    return f"{x:.{dp}f}"


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """One symbol's trading rules. Numeric 0 disables a rule, as in Binance's document."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str
    quote_precision: int
    quote_order_qty_market_allowed: bool
    order_types: frozenset[str]
    min_price: float = 0.0
    max_price: float = 0.0
    tick_size: float = 0.0
    tick_dp: int = 8
    lot_min: float = 0.0
    lot_max: float = 0.0
    lot_step: float = 0.0
    lot_dp: int = 8
    mkt_min: float = 0.0
    mkt_max: float = 0.0
    mkt_step: float = 0.0
    mkt_dp: int = 8
    min_notional: float = 0.0
    min_notional_market: bool = False
    max_notional: float = 0.0
    max_notional_market: bool = False
    legacy_min_notional: float = 0.0
    legacy_min_notional_market: bool = False
    bid_up: float = 0.0
    bid_down: float = 0.0
    ask_up: float = 0.0
    ask_down: float = 0.0
    max_num_orders: int = 0
    # Exact decimal strings, for validation without float error.
    tick_str: str = "0"
    lot_step_str: str = "0"
    mkt_step_str: str = "0"
    # Integer forms of the steps (step == k / scale) for the fast floor.
    lot_scale: int = 1
    lot_k: int = 0
    mkt_scale: int = 1
    mkt_k: int = 0
    quote_scale: int = 100_000_000

    # -- quantizing ------------------------------------------------------------------------
    def floor_market_qty(self, qty: float) -> float:
        """Round a MARKET quantity down to LOT_SIZE's and MARKET_LOT_SIZE's steps."""
        if self.lot_k:
            qty = _floor_units(qty, self.lot_scale, self.lot_k)
        if self.mkt_k:
            qty = _floor_units(qty, self.mkt_scale, self.mkt_k)
        return qty

    def market_max_qty(self) -> float:
        mx = self.lot_max
        if self.mkt_max > 0 and (mx <= 0 or self.mkt_max < mx):
            mx = self.mkt_max
        return mx

    def is_dust(self, qty: float, price: float) -> bool:
        """A balance too small to sell: below the minimum quantity or notional after rounding."""
        if qty < self.lot_min or qty * price < self.min_notional:
            return True
        q = self.floor_market_qty(qty)
        if q <= 0 or q < self.lot_min or (self.mkt_min > 0 and q < self.mkt_min):
            return True
        return self.min_notional_market and q * price < self.min_notional

    def holds(self, qty: float, price: float) -> bool:
        """Cheap test that a balance is a real position (at least the minimum quantity and
        notional); counting open positions needs no rounding."""
        return qty >= self.lot_min and qty * price >= self.min_notional and qty > 0

    def market_buy(self, quote: float, price: float, cuts: list[str]) -> tuple[float, Failure | None]:
        """Quantize a MARKET BUY sized in quote (`quoteOrderQty`); the exchange derives the
        quantity from the fill price, so the quantity rules are checked on the estimate at `price`."""
        if not self.quote_order_qty_market_allowed:
            return quote, Failure((Reason.QUOTE_ORDER_QTY_MARKET,),
                                  f"{self.symbol} forbids MARKET orders by quote amount")
        mx = self.market_max_qty()
        if mx > 0 and quote / price > mx:
            quote = mx * price
            cuts.append(Reason.MARKET_LOT_SIZE if mx == self.mkt_max else Reason.LOT_SIZE)
        if self.max_notional_market and 0 < self.max_notional < quote:
            quote = self.max_notional
            cuts.append(Reason.NOTIONAL)
        quote = _floor_units(quote, self.quote_scale, 1)
        est = quote / price
        if est < self.lot_min + self.lot_step + self.mkt_min + self.mkt_step:
            # Near the minimum: round the estimate as the exchange will before comparing.
            est = self.floor_market_qty(est)
            if self.mkt_min > 0 and est < self.mkt_min:
                return quote, Failure((Reason.MARKET_LOT_SIZE,), f"~{est} below minQty {self.mkt_min}")
            if est <= 0 or est < self.lot_min:
                return quote, Failure((Reason.LOT_SIZE,), f"~{est} below minQty {self.lot_min}")
        if self.min_notional_market and quote < self.min_notional:
            return quote, Failure((Reason.NOTIONAL,), f"{quote} below minNotional {self.min_notional}")
        if self.legacy_min_notional_market and quote < self.legacy_min_notional:
            return quote, Failure((Reason.MIN_NOTIONAL,), f"{quote} below minNotional {self.legacy_min_notional}")
        return quote, None

    def market_sell(self, qty: float, price: float, cuts: list[str]) -> tuple[float, Failure | None]:
        """Quantize a MARKET SELL quantity down; it can only shrink, so it stays within the balance."""
        q = self.floor_market_qty(qty)
        mx = self.market_max_qty()
        if mx > 0 and q > mx:
            q = self.floor_market_qty(mx)
            cuts.append(Reason.MARKET_LOT_SIZE if mx == self.mkt_max else Reason.LOT_SIZE)
        if self.max_notional_market and self.max_notional > 0 and q * price > self.max_notional:
            q = self.floor_market_qty(self.max_notional / price)
            cuts.append(Reason.NOTIONAL)
        if q <= 0 or q < self.lot_min:
            return q, Failure((Reason.LOT_SIZE,), f"{qty} rounds to {q}, below minQty {self.lot_min}")
        if self.mkt_min > 0 and q < self.mkt_min:
            return q, Failure((Reason.MARKET_LOT_SIZE,), f"{q} below minQty {self.mkt_min}")
        if self.min_notional_market and q * price < self.min_notional:
            return q, Failure((Reason.NOTIONAL,), f"~{q * price:.8f} below minNotional {self.min_notional}")
        if self.legacy_min_notional_market and q * price < self.legacy_min_notional:
            return q, Failure((Reason.MIN_NOTIONAL,), f"~{q * price:.8f} below minNotional {self.legacy_min_notional}")
        return q, None

    def limit(self, buy: bool, qty: float, price: float, avg_price: float,
              cuts: list[str]) -> tuple[float, float, Failure | None]:
        """Quantize a LIMIT order: price to the tick (BUY down, SELL up), quantity down."""
        if self.tick_size > 0:
            price = floor_to(price, self.tick_size, self.tick_dp) if buy else ceil_to(price, self.tick_size,
                                                                                       self.tick_dp)
        if price <= 0 or (self.min_price > 0 and price < self.min_price) or (0 < self.max_price < price):
            return qty, price, Failure((Reason.PRICE_FILTER,), f"{price} outside [{self.min_price}, {self.max_price}]")
        up, down = (self.bid_up, self.bid_down) if buy else (self.ask_up, self.ask_down)
        if (up > 0 and price > avg_price * up) or (down > 0 and price < avg_price * down):
            return qty, price, Failure((Reason.PERCENT_PRICE_BY_SIDE,),
                                f"{price} outside {down}-{up} x average {avg_price}")
        q = floor_to(qty, self.lot_step, self.lot_dp)
        if self.lot_max > 0 and q > self.lot_max:
            q = floor_to(self.lot_max, self.lot_step, self.lot_dp)
            cuts.append(Reason.LOT_SIZE)
        if self.max_notional > 0 and q * price > self.max_notional:
            q = floor_to(self.max_notional / price, self.lot_step, self.lot_dp)
            cuts.append(Reason.NOTIONAL)
        if q <= 0 or q < self.lot_min:
            return q, price, Failure((Reason.LOT_SIZE,), f"{qty} rounds to {q}, below minQty {self.lot_min}")
        if q * price < self.min_notional:
            return q, price, Failure((Reason.NOTIONAL,), f"{q * price:.8f} below minNotional {self.min_notional}")
        if q * price < self.legacy_min_notional:
            return q, price, Failure((Reason.MIN_NOTIONAL,),
                                     f"{q * price:.8f} below minNotional {self.legacy_min_notional}")
        return q, price, None

    # -- exact validation (tests and audits) -------------------------------------------------
    def violations(self, *, market: bool, buy: bool, quantity: float | None, quote_quantity: float | None,
                   price: float | None, avg_price: float) -> list[str]:
        """Every filter an order as sent would fail, computed in exact decimals."""
        bad: list[str] = []
        if quote_quantity is not None:
            qq = Decimal(repr(quote_quantity))
            if qq != round(qq, self.quote_precision):
                bad.append("QUOTE_PRECISION")
            notional = qq
            est = Decimal(repr(quote_quantity / avg_price))
            if self.min_notional_market and notional < Decimal(repr(self.min_notional)):
                bad.append(Reason.NOTIONAL)
            mx = self.market_max_qty()
            if mx > 0 and est > Decimal(repr(mx)) * Decimal("1.000000001"):
                bad.append(Reason.MARKET_LOT_SIZE)
            return bad
        assert quantity is not None
        q = Decimal(repr(quantity))
        if q <= 0 or q < Decimal(repr(self.lot_min)) or (self.lot_max > 0 and q > Decimal(repr(self.lot_max))):
            bad.append(Reason.LOT_SIZE)
        if self.lot_step > 0 and q % Decimal(self.lot_step_str) != 0:
            bad.append(Reason.LOT_SIZE)
        if market:
            if (self.mkt_min > 0 and q < Decimal(repr(self.mkt_min))) or (
                    self.mkt_max > 0 and q > Decimal(repr(self.mkt_max))):
                bad.append(Reason.MARKET_LOT_SIZE)
            if self.mkt_step > 0 and q % Decimal(self.mkt_step_str) != 0:
                bad.append(Reason.MARKET_LOT_SIZE)
            px = Decimal(repr(avg_price))
            if self.min_notional_market and q * px < Decimal(repr(self.min_notional)):
                bad.append(Reason.NOTIONAL)
            return bad
        assert price is not None
        p = Decimal(repr(price))
        if self.tick_size > 0 and p % Decimal(self.tick_str) != 0:
            bad.append(Reason.PRICE_FILTER)
        if (self.min_price > 0 and price < self.min_price) or (0 < self.max_price < price):
            bad.append(Reason.PRICE_FILTER)
        up, down = (self.bid_up, self.bid_down) if buy else (self.ask_up, self.ask_down)
        if (up > 0 and price > avg_price * up) or (down > 0 and price < avg_price * down):
            bad.append(Reason.PERCENT_PRICE_BY_SIDE)
        if q * p < Decimal(repr(self.min_notional)) or (self.max_notional > 0 and q * p > Decimal(
                repr(self.max_notional))):
            bad.append(Reason.NOTIONAL)
        return bad


class ExchangeFilters(Mapping[str, SymbolFilters]):
    """Filters of every symbol in one exchangeInfo document."""

    def __init__(self, symbols: Mapping[str, SymbolFilters]) -> None:
        self._symbols = dict(symbols)

    def __getitem__(self, symbol: str) -> SymbolFilters:
        return self._symbols[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._symbols)

    def __len__(self) -> int:
        return len(self._symbols)

    @classmethod
    def from_file(cls, path: str | Path) -> ExchangeFilters:
        return parse_exchange_info(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def bundled(cls) -> ExchangeFilters:
        """The sample BTCUSDT/ETHUSDT document shipped with the package."""
        return cls.from_file(BUNDLED_EXCHANGE_INFO)


def parse_exchange_info(doc: Mapping[str, Any]) -> ExchangeFilters:
    """Parse `GET /api/v3/exchangeInfo`; unknown filter types are ignored, malformed ones raise."""
    symbols = doc.get("symbols")
    if not isinstance(symbols, list):
        raise ValueError("exchangeInfo document has no 'symbols' list")
    return ExchangeFilters({s["symbol"]: parse_symbol(s) for s in symbols})


def parse_symbol(s: Mapping[str, Any]) -> SymbolFilters:
    """One entry of exchangeInfo's `symbols`."""
    kw: dict[str, Any] = {}
    for f in s.get("filters", []):
        kind = f.get("filterType")
        if kind == "PRICE_FILTER":
            kw.update(min_price=float(f["minPrice"]), max_price=float(f["maxPrice"]),
                      tick_size=float(f["tickSize"]), tick_dp=decimals_of(f["tickSize"]),
                      tick_str=str(f["tickSize"]))
        elif kind == "LOT_SIZE":
            scale, k = _scaled(f["stepSize"])
            kw.update(lot_min=float(f["minQty"]), lot_max=float(f["maxQty"]), lot_step=float(f["stepSize"]),
                      lot_dp=decimals_of(f["stepSize"]), lot_step_str=str(f["stepSize"]), lot_scale=scale, lot_k=k)
        elif kind == "MARKET_LOT_SIZE":
            scale, k = _scaled(f["stepSize"])
            kw.update(mkt_min=float(f["minQty"]), mkt_max=float(f["maxQty"]), mkt_step=float(f["stepSize"]),
                      mkt_dp=decimals_of(f["stepSize"]), mkt_step_str=str(f["stepSize"]), mkt_scale=scale, mkt_k=k)
        elif kind == "NOTIONAL":
            kw.update(min_notional=float(f["minNotional"]), min_notional_market=bool(f["applyMinToMarket"]),
                      max_notional=float(f["maxNotional"]), max_notional_market=bool(f["applyMaxToMarket"]))
        elif kind == "MIN_NOTIONAL":
            kw.update(legacy_min_notional=float(f["minNotional"]),
                      legacy_min_notional_market=bool(f["applyToMarket"]))
        elif kind == "PERCENT_PRICE_BY_SIDE":
            kw.update(bid_up=float(f["bidMultiplierUp"]), bid_down=float(f["bidMultiplierDown"]),
                      ask_up=float(f["askMultiplierUp"]), ask_down=float(f["askMultiplierDown"]))
        elif kind == "MAX_NUM_ORDERS":
            kw.update(max_num_orders=int(f["maxNumOrders"]))
    quote_precision = int(s.get("quoteAssetPrecision", s.get("quotePrecision", 8)))
    return SymbolFilters(
        symbol=s["symbol"], status=s.get("status", "TRADING"), base_asset=s["baseAsset"], quote_asset=s["quoteAsset"],
        quote_precision=quote_precision, quote_scale=10 ** quote_precision,
        quote_order_qty_market_allowed=bool(s.get("quoteOrderQtyMarketAllowed", True)),
        order_types=frozenset(s.get("orderTypes", ("MARKET", "LIMIT"))), **kw)
