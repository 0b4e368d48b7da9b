"""BookTicker: the best bid/ask event, its deterministic id, codec round trip and wire properties."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.adapters.azure.eventhub_publisher import to_event_data
from shared.adapters.publisher import PROP_EVENT_TYPE, partition_key_of
from shared.events import EVENT_TYPES, BookTicker, decode, deterministic_id, encode


def ticker(update_id: int = 400900217, bid: float = 25.3519, ask: float = 25.3652) -> BookTicker:
    return BookTicker.create(symbol="BNBUSDT", update_id=update_id, bid_price=bid, bid_quantity=31.21,
                             ask_price=ask, ask_quantity=40.66, event_time=1_700_000_000_000)


def test_id_comes_from_symbol_and_update_id_only() -> None:
    a, b = ticker(), ticker()
    assert a.event_id == b.event_id == deterministic_id("book_ticker", "BNBUSDT", 400900217)
    assert ticker(400900218).event_id != a.event_id
    assert a.correlation_id == a.event_id


def test_round_trips_through_the_codec() -> None:
    t = ticker()
    assert EVENT_TYPES["book_ticker"] is BookTicker
    back = decode(encode(t))
    assert isinstance(back, BookTicker) and back == t


def test_crossed_book_and_negative_prices_are_rejected() -> None:
    with pytest.raises(ValidationError, match="bid_price is above ask_price"):
        ticker(bid=26.0, ask=25.0)
    with pytest.raises(ValidationError):
        ticker(bid=-1.0)
    # An empty side (quoted as 0) is not a crossed book.
    assert ticker(bid=0.0).bid_price == 0.0


def test_wire_form_carries_the_type_property_and_symbol_key() -> None:
    t = ticker()
    data = to_event_data(t)
    assert data.properties[PROP_EVENT_TYPE] == "book_ticker"
    assert data.message_id == t.event_id
    assert partition_key_of(t, "market-data") == "BNBUSDT"
