"""Event schemas: deterministic ids, canonical encoding, strict typed decoding."""

from __future__ import annotations

import json
import re

import factories
import pytest
from factories import intent, kline, signal

from shared.events import (
    DecisionStatus,
    ExecutionReport,
    Fill,
    Kline,
    MalformedEvent,
    OrderIntent,
    OrderStatus,
    RiskDecision,
    Side,
    Signal,
    UnknownEventType,
    UnknownSchemaVersion,
    decode,
    decode_as,
    deterministic_id,
    encode,
)


def all_events() -> list:
    i = intent()
    return [kline(), factories.trade(), signal(), i, factories.decision(i), factories.report(i)]


@pytest.mark.parametrize("event", all_events(), ids=lambda e: e.type)
def test_round_trip_is_exact_and_canonical(event) -> None:
    data = encode(event)
    assert decode(data) == event
    assert encode(decode(data)) == data
    # Canonical: sorted keys, no whitespace.
    obj = json.loads(data)
    assert list(obj) == sorted(obj)
    assert b" " not in data.replace(b"sma_cross", b"")


def test_ids_are_deterministic_and_distinct() -> None:
    assert kline().event_id == kline().event_id
    assert kline().event_id != kline(open_time=1_577_836_860_000).event_id
    assert signal().event_id == signal().event_id
    assert intent().event_id == OrderIntent.make_id(signal().event_id)
    assert len({e.event_id for e in all_events()}) == len(all_events())


def test_correlation_follows_the_decision() -> None:
    k, s, i = kline(), signal(), intent()
    assert s.correlation_id == k.event_id == i.correlation_id
    assert s.market_event_id == k.event_id


def test_client_order_id_fits_binance() -> None:
    coid = intent().client_order_id
    assert re.fullmatch(r"^[.A-Za-z:/0-9_-]{1,36}$", coid)
    assert coid == intent().client_order_id  # derived, not random


def test_unknown_schema_version_is_typed_and_names_the_field() -> None:
    obj = json.loads(encode(kline()))
    obj["schema_version"] = 2
    with pytest.raises(UnknownSchemaVersion) as err:
        decode(json.dumps(obj))
    assert err.value.field == "schema_version"
    assert "2" in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("close"), "close"),
        (lambda o: o.update(close="abc"), "close"),
        (lambda o: o.update(open=-1.0), "open"),
        (lambda o: o.update(symbol="btc usdt"), "symbol"),
        (lambda o: o.update(unexpected=1), "unexpected"),
        (lambda o: o.pop("schema_version"), "schema_version"),
        (lambda o: o.update(type="candle"), "type"),
    ],
)
def test_malformed_bodies_name_the_field(mutate, field) -> None:
    obj = json.loads(encode(kline()))
    mutate(obj)
    with pytest.raises((MalformedEvent, UnknownEventType)) as err:
        decode(json.dumps(obj))
    assert err.value.field == field
    assert field in str(err.value)


def test_ohlc_inconsistency_is_rejected() -> None:
    obj = json.loads(encode(kline()))
    obj["high"] = 1.0
    with pytest.raises(MalformedEvent, match="high"):
        decode(json.dumps(obj))


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(MalformedEvent, match="not JSON"):
        decode(b"\xff{")
    with pytest.raises(MalformedEvent, match="list"):
        decode(b"[1, 2]")


def test_decode_as_requires_the_type() -> None:
    assert decode_as(encode(signal()), Signal) == signal()
    with pytest.raises(UnknownEventType):
        decode_as(encode(kline()), Signal)


def test_intent_needs_exactly_one_size() -> None:
    s = signal()
    with pytest.raises(ValueError, match="exactly one"):
        OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                    event_time=s.event_time, symbol=s.symbol, strategy=s.strategy, side=s.side,
                    quantity=1.0, quote_quantity=1.0, reference_price=s.price, signal_id=s.event_id)


def test_trusted_factories_build_what_the_validator_builds() -> None:
    """`trusted` skips validation between in-process handlers; what it builds must be the very
    instance the validator would build from the same values (fields, order, defaults, set fields)."""
    from shared.events.base import trusted

    sig = Signal.create(symbol="BTCUSDT", strategy="sma_cross", side=Side.SELL, price=7200.5, bar_open_time=60_000,
                        bar_close_time=119_999, market_event_id="k" * 32, correlation_id="k" * 32)
    intent = OrderIntent(event_id=OrderIntent.make_id(sig.event_id), correlation_id=sig.correlation_id,
                         event_time=1, symbol="BTCUSDT", strategy="sma_cross", side=Side.SELL, quantity=0.5,
                         reference_price=7200.5, signal_id=sig.event_id)
    fill = trusted(Fill, {"price": 7201.0, "quantity": 0.5, "commission": 3.6, "commission_asset": "USDT",
                          "trade_id": 7})
    built = [
        sig, fill,
        RiskDecision.create(layer=1, subject_id=sig.event_id, symbol="BTCUSDT", status=DecisionStatus.REJECTED,
                            reasons=("NO_POSITION",), detail="flat", correlation_id="c" * 32, event_time=1),
        ExecutionReport.create(intent=intent, status=OrderStatus.NEW, venue="paper", order_id=1, base_asset="BTC",
                               quote_asset="USDT", fills=(), event_time=2),
        ExecutionReport.create(intent=intent, status=OrderStatus.FILLED, venue="paper", order_id=1,
                               base_asset="BTC", quote_asset="USDT", fills=(fill,), event_time=3),
    ]
    for event in built:
        validated = type(event).model_validate({k: getattr(event, k) for k in event.model_fields_set})
        assert validated == event and repr(validated) == repr(event)
        assert validated.model_fields_set == event.model_fields_set
        assert validated.model_dump_json() == event.model_dump_json()


def test_hot_path_ids_equal_the_generic_deterministic_id() -> None:
    """The factories that run per decision join their id parts by hand; the ids must not change."""
    sig = Signal.create(symbol="BTCUSDT", strategy="sma_cross", side=Side.BUY, price=7200.5, bar_open_time=60_000,
                        bar_close_time=119_999, market_event_id="k" * 32, correlation_id="k" * 32)
    assert sig.event_id == deterministic_id("signal", "sma_cross", "BTCUSDT", "BUY", 60_000)
    assert OrderIntent.make_id(sig.event_id) == deterministic_id("intent", sig.event_id)
    assert Kline.make_id("BTCUSDT", "1m", 60_000) == deterministic_id("kline", "BTCUSDT", "1m", 60_000)
    d = RiskDecision.create(layer=2, subject_id="s" * 32, symbol="BTCUSDT", status=DecisionStatus.REDUCED,
                            reasons=("MAX_ORDER_NOTIONAL",), detail="", correlation_id="c" * 32, event_time=1)
    assert d.event_id == deterministic_id("decision", 2, "s" * 32)
    intent = OrderIntent(event_id=OrderIntent.make_id(sig.event_id), correlation_id=sig.correlation_id,
                         event_time=1, symbol="BTCUSDT", strategy="sma_cross", side=Side.BUY, quote_quantity=100.0,
                         reference_price=7200.5, signal_id=sig.event_id)
    fill = Fill(price=7201.0, quantity=0.0138, commission=0.1, commission_asset="USDT", trade_id=7)
    r = ExecutionReport.create(intent=intent, status=OrderStatus.FILLED, venue="paper", order_id=1,
                               base_asset="BTC", quote_asset="USDT", fills=(fill,), event_time=2)
    assert r.event_id == deterministic_id("execution", r.client_order_id, "FILLED", repr(0.0138))
