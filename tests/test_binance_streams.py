"""Binance stream names, URLs and limits; the stream parser; backoff and the connection throttle;
the ingestor settings. Pure functions, no sockets."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from aks_ingestor.settings import IngestSettings, SettingsError
from shared.adapters.binance.stream_client import Backoff, ConnectionThrottle
from shared.adapters.binance.stream_messages import MalformedMessage, Reconnect, StreamParser, trade_item
from shared.adapters.binance.streams import (
    MAX_STREAMS_PER_CONNECTION,
    StreamKey,
    StreamKind,
    connection_groups,
    stream_keys,
    stream_url,
)
from shared.events import BookTicker, Kline, Trade, encode
from tests.binance_loopback import kline_payload, kline_rows


def test_stream_names_are_lower_case_and_urls_combined_or_raw() -> None:
    keys = stream_keys(["ethusdt", "BTCUSDT"], ["1m", "5m"], trades=True, book_ticker=True)
    assert [k.name for k in keys] == ["ethusdt@kline_1m", "ethusdt@kline_5m", "ethusdt@trade", "ethusdt@bookTicker",
                                      "btcusdt@kline_1m", "btcusdt@kline_5m", "btcusdt@trade", "btcusdt@bookTicker"]
    assert keys[0].symbol == "ETHUSDT"
    assert stream_url("wss://x:9443/", keys[:2]) == "wss://x:9443/stream?streams=ethusdt@kline_1m/ethusdt@kline_5m"
    assert stream_url("wss://x:9443", keys[2:3]) == "wss://x:9443/ws/ethusdt@trade"


def test_connections_hold_at_most_1024_streams_and_keep_a_symbol_together() -> None:
    keys = stream_keys([f"S{i}USDT" for i in range(700)], ["1m"], trades=True)  # 1,400 streams
    groups = connection_groups(keys)
    assert [len(g) for g in groups] == [1024, 376]
    assert all(len({k.symbol for k in g} & {k.symbol for k in h}) == 0 for g in groups for h in groups if g is not h)
    with pytest.raises(ValueError):
        connection_groups(keys, MAX_STREAMS_PER_CONNECTION + 1)


def test_parser_normalizes_closed_klines_trades_and_book_tickers() -> None:
    kl, tr, bt = (StreamKey("BTCUSDT", StreamKind.KLINE, "1m"), StreamKey("BTCUSDT", StreamKind.TRADE),
                  StreamKey("BTCUSDT", StreamKind.BOOK_TICKER))
    parser = StreamParser([kl, tr, bt])
    row = kline_rows(1)[0]
    item = parser.parse(json.dumps({"stream": kl.name, "data": kline_payload("BTCUSDT", row)}), 0)
    assert item is not None and not isinstance(item, Reconnect)
    assert isinstance(item.event, Kline) and item.row == ",".join(row) and item.seq == int(row[0])
    assert parser.parse(json.dumps({"stream": kl.name, "data": kline_payload("BTCUSDT", row, closed=False)}), 0) is None
    trade = {"e": "trade", "E": 2, "s": "BTCUSDT", "t": 7, "p": "0.25", "q": "4.0", "T": 1, "m": False, "M": True}
    item = parser.parse(json.dumps({"stream": tr.name, "data": trade}), 0)
    assert item is not None and not isinstance(item, Reconnect) and isinstance(item.event, Trade)
    assert item.row == "7,0.25,4.0,1,1,False,True"
    book = {"u": 9, "s": "BTCUSDT", "b": "1.5", "B": "2", "a": "1.6", "A": "3"}
    item = parser.parse(json.dumps({"stream": bt.name, "data": book}), 1234)
    assert item is not None and not isinstance(item, Reconnect) and isinstance(item.event, BookTicker)
    assert item.event.event_time == 1234 and item.event.ask_price == 1.6
    notice = parser.parse(json.dumps({"stream": kl.name, "data": {"e": "serverShutdown", "E": 1}}), 0)
    assert isinstance(notice, Reconnect)


@pytest.mark.parametrize("frame, reason", [
    ("[1, 2]", "a JSON list"),
    ('{"stream": "btcusdt@trade", "data": {"e": "trade", "s": "BTCUSDT", "t": 1, "p": "x", "q": "1", "T": 1, '
     '"m": true}}', "ValueError"),
    ('{"stream": "btcusdt@trade", "data": {"e": "trade", "s": "BTCUSDT", "t": 1, "q": "1", "T": 1, "m": true}}',
     "missing field 'p'"),
    ('{"stream": "btcusdt@trade", "data": {"e": "trade", "s": "BTCUSDT", "t": 1, "p": "1", "q": "1", "T": 1, '
     '"m": "yes"}}', "expected true or false"),
    ('{"stream": "btcusdt@trade", "data": {"e": "aggTrade", "s": "BTCUSDT"}}', "event type 'aggTrade'"),
    ('{"stream": "btcusdt@trade", "data": {"e": "trade", "s": "BTCUSDT", "t": 1, "p": "-1", "q": "1", "T": 1, '
     '"m": true}}', "invalid price"),
])
def test_parser_rejects_what_it_cannot_trust(frame: str, reason: str) -> None:
    parser = StreamParser([StreamKey("BTCUSDT", StreamKind.TRADE), StreamKey("ETHUSDT", StreamKind.TRADE)])
    with pytest.raises(MalformedMessage, match=reason):
        parser.parse(frame, 0)


def test_frames_are_json_exactly_as_json_loads_reads_them() -> None:
    parser = StreamParser([StreamKey("BTCUSDT", StreamKind.TRADE)])
    trade = json.dumps({"e": "trade", "s": "BTCUSDT", "t": 7, "p": "0.25", "q": "4.0", "T": 1, "m": False})
    for frame in (trade, f" {trade}\n", trade.encode()):
        item = parser.parse(frame, 0)
        assert item is not None and not isinstance(item, Reconnect) and item.seq == 7
    for frame in (trade + " x", trade + trade, "", " ", b"\xff"):
        with pytest.raises(MalformedMessage, match="not JSON"):
            parser.parse(frame, 0)


@pytest.mark.parametrize("trade_id, price, qty, time, maker", [
    (7, "0.25", "4.0", 1, False), (0, "1e-8", "90000000", 0, True), (2**62, "123456.78", "0.00001", 10**13, True),
])
def test_a_trade_built_without_revalidation_equals_the_validated_one(trade_id: int, price: str, qty: str, time: int,
                                                                     maker: bool) -> None:
    key = StreamKey("BTCUSDT", StreamKind.TRADE)
    item = trade_item(key, trade_id, price, qty, time, maker, True)
    expected = Trade.create(symbol="BTCUSDT", trade_id=trade_id, price=float(price), quantity=float(qty),
                            trade_time=time, is_buyer_maker=maker)
    assert item.event == expected and item.event.model_dump() == expected.model_dump()
    assert Trade.model_validate(item.event.model_dump()) == item.event
    assert encode(item.event) == encode(expected)


@pytest.mark.parametrize("symbol, args, reason", [
    ("BTCUSDT", (-1, "1", "1", 1), "invalid trade_id"),
    ("BTCUSDT", (1, "1", "1", -5), "invalid event_time"),
    ("BTCUSDT", (1, "nan", "1", 1), "invalid price"),
    ("BTCUSDT", (1, "1", "inf", 1), "invalid quantity"),
    ("BTCUSDT", (1, "1", "0", 1), "invalid quantity"),
    ("btcusdt", (1, "1", "1", 1), "invalid symbol"),
])
def test_out_of_range_trades_still_go_through_the_validator(symbol: str, args: tuple[int, str, str, int],
                                                            reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        trade_item(StreamKey(symbol, StreamKind.TRADE), *args, False, True)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    b = Backoff(base=0.5, cap=8.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    for n, d in enumerate(delays):
        full = min(8.0, 0.5 * 2 ** n)
        assert full / 2 <= d <= full
    assert len(set(delays)) == len(delays)
    b.reset()
    assert b.next_delay() <= 0.5


def test_throttle_allows_300_attempts_per_window() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    throttle = ConnectionThrottle(limit=3, window=300.0, clock=lambda: now[0], sleep=fake_sleep)

    async def go() -> None:
        for _ in range(3):
            await throttle.acquire()
        assert slept == []
        now[0] = 10.0
        await throttle.acquire()  # the 4th waits until the first leaves the window
        assert slept == [290.0]
    asyncio.run(go())


def test_settings_from_environment_and_limits() -> None:
    s = IngestSettings.from_env({"INGEST_SYMBOLS": "btcusdt, ETHUSDT", "INGEST_INTERVALS": "1m,1h",
                                 "INGEST_TRADES": "true", "INGEST_SINK": "dir:/tmp/x", "INGEST_STALE_TIMEOUT": "20",
                                 "INGEST_HTTP_PORT": "off"})
    assert [k.name for k in s.stream_keys()][:3] == ["btcusdt@kline_1m", "btcusdt@kline_1h", "btcusdt@trade"]
    assert s.sink.kind == "dir" and s.http_port is None and s.stale_timeout == 20
    assert s.deadletter_target().kind == "dir"
    assert IngestSettings(symbols=("BTCUSDT",)).deadletter_target().kind == "blob"
    assert IngestSettings(symbols=("BTCUSDT",)).stale_timeout <= 60
    with pytest.raises(SettingsError, match="stale timeout"):
        IngestSettings(symbols=("BTCUSDT",), stale_timeout=61)
    with pytest.raises(SettingsError, match="not a number"):
        IngestSettings.from_env({"INGEST_SYMBOLS": "BTCUSDT", "INGEST_STALE_TIMEOUT": "soon"})
