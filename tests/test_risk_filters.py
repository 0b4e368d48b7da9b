"""Binance exchange filters: parsing the bundled exchangeInfo, rounding toward safety, rejections by name."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.risk import ExchangeFilters, Reason, parse_exchange_info
from shared.risk.filters import BUNDLED_EXCHANGE_INFO, Failure, ceil_to, decimals_of, floor_to, fmt

DOC = json.loads(BUNDLED_EXCHANGE_INFO.read_text())


def why(fail: Failure | None) -> tuple[str, ...]:
    """The reason codes of a failure that must have happened."""
    assert fail is not None
    return fail[0]


FILTERS = ExchangeFilters.bundled()
BTC = FILTERS["BTCUSDT"]
ETH = FILTERS["ETHUSDT"]


def _doc_with(symbol: str, **changes: object) -> ExchangeFilters:
    doc = copy.deepcopy(DOC)
    for s in doc["symbols"]:
        if s["symbol"] == symbol:
            for f in s["filters"]:
                for key, value in changes.items():
                    if key in f:
                        f[key] = value
            s.update({k: v for k, v in changes.items() if k in s})
    return parse_exchange_info(doc)


def test_bundled_document_has_binance_shape() -> None:
    assert set(DOC) == {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"}
    assert [s["symbol"] for s in DOC["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    for s in DOC["symbols"]:
        kinds = [f["filterType"] for f in s["filters"]]
        for kind in ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL", "PERCENT_PRICE_BY_SIDE",
                     "MAX_NUM_ORDERS"):
            assert kind in kinds
        # Binance sends decimals as strings with eight places.
        lot = next(f for f in s["filters"] if f["filterType"] == "LOT_SIZE")
        assert all(isinstance(lot[k], str) and len(lot[k].split(".")[1]) == 8 for k in ("minQty", "stepSize"))


def test_parse_reads_every_filter() -> None:
    assert (BTC.base_asset, BTC.quote_asset, BTC.status, BTC.quote_precision) == ("BTC", "USDT", "TRADING", 8)
    assert (BTC.tick_size, BTC.min_price, BTC.max_price, BTC.tick_dp) == (0.01, 0.01, 1_000_000.0, 2)
    assert (BTC.lot_step, BTC.lot_min, BTC.lot_max, BTC.lot_dp) == (0.00001, 0.00001, 9_000.0, 5)
    assert (BTC.mkt_step, BTC.mkt_min, BTC.mkt_max) == (0.0, 0.0, 83.76554183)
    assert (BTC.min_notional, BTC.min_notional_market, BTC.max_notional, BTC.max_notional_market) == (
        5.0, True, 9_000_000.0, False)
    assert (BTC.bid_up, BTC.bid_down, BTC.ask_up, BTC.ask_down) == (5.0, 0.2, 5.0, 0.2)
    assert BTC.max_num_orders == 200 and BTC.quote_order_qty_market_allowed
    assert (ETH.lot_step, ETH.lot_min, ETH.lot_dp) == (0.0001, 0.0001, 4)


def test_malformed_documents_raise_and_unknown_filters_are_ignored() -> None:
    with pytest.raises(ValueError, match="symbols"):
        parse_exchange_info({"timezone": "UTC"})
    doc = copy.deepcopy(DOC)
    doc["symbols"][0]["filters"].append({"filterType": "SOMETHING_NEW", "x": 1})
    assert parse_exchange_info(doc)["BTCUSDT"] == BTC
    doc["symbols"][0]["filters"][1].pop("stepSize")
    with pytest.raises(KeyError):
        parse_exchange_info(doc)


def test_decimals_and_formatting() -> None:
    assert [decimals_of(s) for s in ("0.00001000", "0.01000000", "1.00000000", "10", "0.00000000")] == [5, 2, 0, 0, 0]
    assert fmt(0.12345, 5) == "0.12345" and fmt(100.0, 2) == "100.00"


@settings(max_examples=300)
@given(x=st.floats(0, 1e6, allow_nan=False), step=st.sampled_from(["0.00001000", "0.00010000", "0.01000000",
                                                                    "0.50000000", "1.00000000", "0.00000001"]))
def test_floor_and_ceil_stay_on_the_safe_side_of_x_on_the_step_grid(x: float, step: str) -> None:
    s, dp = float(step), decimals_of(step)
    lo = floor_to(x, s, dp)
    hi = ceil_to(x, s, dp)
    assert lo <= x <= hi
    assert x - lo < s * (1 + 1e-9) + 1e-9 and hi - x < s * (1 + 1e-9) + 1e-9
    for v in (lo, hi):
        assert Decimal(repr(v)) % Decimal(step) == 0
    # Quantizing twice changes nothing: layer 2 sends what layer 1 rounded, unchanged.
    assert floor_to(lo, s, dp) == lo and ceil_to(hi, s, dp) == hi


def test_market_sell_rounds_down_within_the_balance() -> None:
    cuts: list[str] = []
    qty, fail = BTC.market_sell(0.123456789, 40_000.0, cuts)
    assert fail is None and qty == 0.12345 and cuts == []
    # A balance net of a base-asset fee (0.001 bought, 0.000001 fee) sells 0.00099, never 0.001.
    qty, fail = BTC.market_sell(0.000999, 40_000.0, cuts)
    assert fail is None and qty == 0.00099 and qty <= 0.000999


def test_market_sell_rejects_with_the_filter_name() -> None:
    assert why(BTC.market_sell(0.000004, 40_000.0, [])[1]) == (Reason.LOT_SIZE,)
    assert why(BTC.market_sell(0.0001, 40_000.0, [])[1]) == (Reason.NOTIONAL,)  # 4 USDT < 5
    legacy = copy.deepcopy(DOC)
    legacy["symbols"][0]["filters"].append({"filterType": "MIN_NOTIONAL", "minNotional": "10.00000000",
                                            "applyToMarket": True, "avgPriceMins": 5})
    assert why(parse_exchange_info(legacy)["BTCUSDT"].market_sell(0.0002, 40_000.0, [])[1]) == (Reason.MIN_NOTIONAL,)
    with_min = _doc_with("BTCUSDT", minQty="0.00100000")["BTCUSDT"]
    assert why(with_min.market_sell(0.0009, 40_000.0, [])[1]) == (Reason.LOT_SIZE,)


def test_market_sell_above_the_market_maximum_is_cut_down() -> None:
    cuts: list[str] = []
    qty, fail = BTC.market_sell(100.0, 40_000.0, cuts)
    assert fail is None and qty == 83.76554 and cuts == [Reason.MARKET_LOT_SIZE]


def test_market_buy_by_quote_respects_precision_minimum_and_maximum() -> None:
    cuts: list[str] = []
    quote, fail = BTC.market_buy(1_000.123456789, 40_000.0, cuts)
    assert fail is None and quote == 1_000.12345678 and quote <= 1_000.123456789 and cuts == []
    assert why(BTC.market_buy(4.99, 40_000.0, [])[1]) == (Reason.NOTIONAL,)
    assert why(BTC.market_buy(0.3, 40_000.0, [])[1]) == (Reason.LOT_SIZE,)  # ~0.0000075 BTC < 0.00001
    quote, fail = BTC.market_buy(4_000_000.0, 40_000.0, cuts)  # ~100 BTC > 83.77 market maximum
    assert fail is None and quote <= 83.76554183 * 40_000.0 and cuts == [Reason.MARKET_LOT_SIZE]
    no_quote = _doc_with("BTCUSDT", quoteOrderQtyMarketAllowed=False)["BTCUSDT"]
    assert why(no_quote.market_buy(100.0, 40_000.0, [])[1]) == (Reason.QUOTE_ORDER_QTY_MARKET,)


def test_limit_prices_round_toward_safety_and_are_checked() -> None:
    cuts: list[str] = []
    qty, price, fail = BTC.limit(True, 0.0123456, 40_000.009, 40_000.0, cuts)
    assert fail is None and (qty, price) == (0.01234, 40_000.0)  # a BUY never pays more
    qty, price, fail = BTC.limit(False, 0.0123456, 40_000.001, 40_000.0, cuts)
    assert fail is None and price == 40_000.01  # a SELL never sells cheaper
    assert why(BTC.limit(True, 0.01, 0.001, 40_000.0, [])[2]) == (Reason.PRICE_FILTER,)
    assert why(BTC.limit(True, 0.0001, 2_000_000.0, 400_000.0, [])[2]) == (Reason.PRICE_FILTER,)
    assert why(BTC.limit(True, 0.01, 250_000.0, 40_000.0, [])[2]) == (Reason.PERCENT_PRICE_BY_SIDE,)
    assert why(BTC.limit(False, 0.01, 7_000.0, 40_000.0, [])[2]) == (Reason.PERCENT_PRICE_BY_SIDE,)
    assert why(BTC.limit(True, 0.0001, 40_000.0, 40_000.0, [])[2]) == (Reason.NOTIONAL,)  # 4 USDT
    qty, _, fail = BTC.limit(True, 10_000.0, 40_000.0, 40_000.0, cuts)
    assert fail is None and qty == 225.0 and Reason.NOTIONAL in cuts  # 9,000,000 / 40,000


def test_violations_are_computed_in_exact_decimals() -> None:
    def sell(q: float) -> list[str]:
        return BTC.violations(market=True, buy=False, quantity=q, quote_quantity=None, price=None, avg_price=40_000.0)

    def limit_buy(q: float, p: float) -> list[str]:
        return BTC.violations(market=False, buy=True, quantity=q, quote_quantity=None, price=p, avg_price=40_000.0)

    def quote_buy(qq: float) -> list[str]:
        return BTC.violations(market=True, buy=True, quantity=None, quote_quantity=qq, price=None, avg_price=40_000.0)

    assert sell(0.12345) == []
    assert Reason.LOT_SIZE in sell(0.123456)
    assert Reason.NOTIONAL in sell(0.0001)
    assert limit_buy(0.001, 40_000.01) == []
    assert Reason.PRICE_FILTER in limit_buy(0.001, 40_000.005)
    assert quote_buy(100.12345678) == []
    assert quote_buy(100.123456789) == ["QUOTE_PRECISION"]


def test_dust_is_what_cannot_be_sold() -> None:
    assert BTC.is_dust(0.00009, 40_000.0)           # 3.6 USDT, below the 5 USDT minimum
    assert BTC.is_dust(0.000009, 1_000_000.0)       # below minQty
    assert not BTC.is_dust(0.0002, 40_000.0)
    assert BTC.holds(0.0002, 40_000.0) and not BTC.holds(0.00009, 40_000.0)


@settings(max_examples=300)
@given(qty=st.floats(0, 200, allow_nan=False), price=st.floats(100, 200_000, allow_nan=False),
       symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]))
def test_every_accepted_market_sell_satisfies_the_filters_and_the_balance(qty: float, price: float,
                                                                         symbol: str) -> None:
    fs = FILTERS[symbol]
    out, fail = fs.market_sell(qty, price, [])
    if fail is None:
        assert 0 < out <= qty
        assert fs.market_sell(out, price, []) == (out, None)  # idempotent
        assert fs.violations(market=True, buy=False, quantity=out, quote_quantity=None, price=None,
                             avg_price=price) == []


@settings(max_examples=300)
@given(quote=st.floats(0, 1e7, allow_nan=False), price=st.floats(100, 200_000, allow_nan=False),
       symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]))
def test_every_accepted_market_buy_stays_within_its_budget(quote: float, price: float, symbol: str) -> None:
    fs = FILTERS[symbol]
    out, fail = fs.market_buy(quote, price, [])
    if fail is None:
        assert 0 < out <= quote
        assert fs.market_buy(out, price, []) == (out, None)  # idempotent
        assert fs.violations(market=True, buy=True, quantity=None, quote_quantity=out, price=None,
                             avg_price=price) == []


@settings(max_examples=300)
@given(qty=st.floats(0, 100, allow_nan=False), price=st.floats(1, 300_000, allow_nan=False),
       avg=st.floats(1_000, 100_000, allow_nan=False), buy=st.booleans())
def test_every_accepted_limit_order_satisfies_the_filters(qty: float, price: float, avg: float, buy: bool) -> None:
    out_q, out_p, fail = BTC.limit(buy, qty, price, avg, [])
    if fail is None:
        assert 0 < out_q <= qty
        assert (out_p <= price) if buy else (out_p >= price)
        assert BTC.violations(market=False, buy=buy, quantity=out_q, quote_quantity=None, price=out_p,
                              avg_price=avg) == []
