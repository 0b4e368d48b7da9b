"""Trade and book ticker packs: exactly the events they pack, through the codec, the SDK and the emulator."""

from __future__ import annotations

import asyncio
import json
import time

import factories
import pytest

from aks_ingestor.ingestor import Ingestor
from aks_ingestor.sinks import InMemoryMalformedSink, PublisherSink
from emulator import BackgroundEmulator
from emulator.app import load_default
from shared import topology
from shared.adapters.azure import EventHubPublisher
from shared.adapters.azure.eventhub_publisher import to_event_data
from shared.adapters.publisher import PROP_EVENT_TYPE
from shared.data import read_trades
from shared.events import (
    BookTicker,
    BookTickerPack,
    Kline,
    MalformedEvent,
    Trade,
    TradePack,
    decode,
    deterministic_id,
    encode,
    pack,
    unpack,
)
from shared.events.packs import MAX_ROWS
from shared.samples import trx_trades_path
from tests.binance_loopback import StreamServer, trade_records, trade_rows
from tests.emulator_support import receive
from tests.test_ingestor_faults import expected_trades, settings


@pytest.fixture(scope="module")
def capture() -> list[Trade]:
    """The bundled TRXUSDT trade capture as the one-event-per-trade form."""
    return [t.to_trade() for t in read_trades(trx_trades_path())[:2_500]]


def tickers(n: int) -> list[BookTicker]:
    b = factories.book_ticker()
    return [BookTicker.create(symbol="BTCUSDT", update_id=b.update_id + 2 * i, bid_price=7200.0 + i / 10,
                              bid_quantity=1.5, ask_price=7200.1 + i / 10, ask_quantity=0.0 if i % 7 else 2.0,
                              event_time=b.event_time + i) for i in range(n)]


def test_a_pack_is_exactly_its_trades_through_the_codec(capture: list[Trade]) -> None:
    packs = pack(capture)
    assert [len(p.trades) for p in packs] == [MAX_ROWS, MAX_ROWS, len(capture) - 2 * MAX_ROWS]  # type: ignore[attr-defined]
    decoded = [decode(encode(p)) for p in packs]
    assert decoded == packs
    assert unpack(decoded) == capture  # values and the one-per-trade ids
    first = packs[0]
    assert isinstance(first, TradePack) and first.symbol == "TRXUSDT"
    assert first.event_id == deterministic_id("trade_pack", "TRXUSDT", capture[0].trade_id,
                                              capture[MAX_ROWS - 1].trade_id)
    assert first.event_time == capture[MAX_ROWS - 1].trade_time
    assert pack(capture)[0].event_id == first.event_id  # the same rows, the same id
    assert pack(capture[1:])[0].event_id != first.event_id
    # A row is its values only: under 60 bytes of JSON per trade, against ~280 as one event each.
    size = len(encode(first))
    assert size < 60 * MAX_ROWS and size * 4 < sum(len(encode(t)) for t in capture[:MAX_ROWS])


def test_book_tickers_pack_and_unpack_and_klines_stay_events(capture: list[Trade]) -> None:
    k = factories.kline()
    ticks = tickers(30)
    mixed: list = [capture[0], ticks[0], k, capture[1], *ticks[1:], capture[2]]
    out = pack(mixed, max_rows=20)
    assert out[0] == k
    assert [type(e) for e in out[1:]] == [TradePack, BookTickerPack, BookTickerPack]
    assert unpack(out) == [k, *capture[:3], *ticks]
    assert [decode(encode(e)) for e in out] == out
    assert pack([]) == [] and unpack([]) == []


@pytest.mark.parametrize(("body", "field", "why"), [
    ({"trades": []}, "trades", "at least 1"),
    ({"trades": [[2, 0.23, 100.0, 1, True], [2, 0.23, 100.0, 2, False]]}, None, "row 1: trade id 2 does not follow 2"),
    ({"trades": [[2, -0.23, 100.0, 1, True]]}, "trades.0.1", "greater than 0"),
    ({"trades": [[2, 0.23, 100.0, 1]]}, "trades.0.4", "required"),
    ({"trades": [[1, 0.2, 1.0, 1, True]] * (MAX_ROWS + 1)}, "trades", "at most"),
])
def test_a_bad_trade_pack_is_one_clear_error(body: dict, field: str | None, why: str) -> None:
    good = encode(factories.trade_pack()).decode()
    obj = {**json.loads(good), **body}
    with pytest.raises(MalformedEvent, match=why) as err:
        decode(json.dumps(obj))
    assert err.value.field == field


def test_the_producer_refuses_rows_out_of_order_as_the_consumers_would(capture: list[Trade]) -> None:
    with pytest.raises(ValueError, match="row 2: trade id"):
        TradePack.of([capture[0], capture[1], capture[1]])
    ticks = tickers(3)
    with pytest.raises(ValueError, match="row 1: update id"):
        BookTickerPack.of([ticks[1], ticks[0]])


def test_a_crossed_book_ticker_row_is_an_error() -> None:
    obj = json.loads(encode(factories.book_ticker_pack()))
    obj["updates"][1][1] = 7300.0  # bid above the ask
    with pytest.raises(MalformedEvent, match="row 1: bid_price is above ask_price"):
        decode(json.dumps(obj))


def test_the_wire_form_carries_the_pack_type_for_the_consumers_filter() -> None:
    data = to_event_data(factories.trade_pack())
    assert data.properties[PROP_EVENT_TYPE] == "trade_pack"
    assert data.message_id == factories.trade_pack().event_id


def test_the_ingestor_publishes_packed_trades_through_the_sdk_to_the_emulator() -> None:
    """The real ingestor, EventHubPublisher and azure-eventhub against the emulator: what a consumer
    receives unpacks to the source trades, each once and in order, on the symbol's partition."""
    n = 300
    records = {"btcusdt@kline_1m": [], "trxusdt@kline_1m": [], "btcusdt@trade": [],
               "trxusdt@trade": trade_records(trade_rows(n))}

    async def ingest(conn: str) -> None:
        async with StreamServer(records) as server:
            publisher = EventHubPublisher.from_settings(environ={topology.EVENTHUB_CONNECTION_SETTING: conn})
            ing = Ingestor(settings(server, None), PublisherSink(publisher), InMemoryMalformedSink())
            task = asyncio.create_task(ing.run())
            deadline = time.monotonic() + 20
            while ing.batcher.written < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            ing.stop.set()
            await task

    with BackgroundEmulator(load_default(), port=0, health_port=None) as emu:
        asyncio.run(ingest(emu.connection_string()))
        # Everything the ingestor published is in the hub by now: take what arrives in a few seconds.
        more = receive(emu.connection_string(topology.MARKET_DATA.name), 10**6, timeout=4,
                       group=topology.consumer_group(topology.MARKET_DATA.name, "signals"))
    assert more and all(e.properties[PROP_EVENT_TYPE.encode()] == b"trade_pack" for e in more)
    assert {e.partition_key for e in more} == {b"TRXUSDT"}
    events = [decode(b"".join(e.body)) for e in more]
    assert len(events) < n / 5  # packed: far fewer hub events than trades
    trades = unpack(events)
    assert not any(isinstance(e, Kline) for e in trades)
    assert [(t.trade_id, t.trade_time, t.price, t.quantity, t.is_buyer_maker) for t in trades] == expected_trades(n)
