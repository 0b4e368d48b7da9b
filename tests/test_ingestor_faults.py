"""The ingestor against a loopback Binance (tests/binance_loopback.py): after every injected fault the
published events equal the source records, with no loss, no duplicate and the order kept."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from aks_ingestor.ingestor import Ingestor
from aks_ingestor.settings import IngestSettings, Target
from aks_ingestor.sinks import DirMalformedSink, DirSink, EventSink, InMemoryMalformedSink, PublisherSink
from shared.adapters.binance.stream_messages import Item
from shared.adapters.binance.streams import StreamKey
from shared.adapters.publisher import InMemoryPublisher
from shared.data import read_klines, read_trades
from shared.events import Kline, Trade, unpack
from tests.binance_loopback import (
    Fault,
    Record,
    RestServer,
    StreamServer,
    kline_lines,
    kline_records,
    kline_rows,
    trade_records,
    trade_rows,
)

N_BARS = 240
N_TRADES = 400
KLINE = "btcusdt@kline_1m"
TRADE = "trxusdt@trade"


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return kline_rows(1500)


@pytest.fixture(scope="module")
def trades() -> list[dict[str, str]]:
    return trade_rows(N_TRADES)


def streams(rows: list[list[str]], trades: list[dict[str, str]], n_bars: int = N_BARS,
            with_trades: bool = True) -> dict[str, list[Record]]:
    out = {KLINE: kline_records("BTCUSDT", rows[:n_bars]), "trxusdt@kline_1m": [],
           "btcusdt@trade": [], TRADE: trade_records(trades) if with_trades else []}
    return out


def settings(stream: StreamServer, rest: RestServer | None, *, trades: bool = True, sink: str = "eventhub",
             **kw: Any) -> IngestSettings:
    return IngestSettings(symbols=("BTCUSDT", "TRXUSDT") if trades else ("BTCUSDT",), intervals=("1m",),
                          trades=trades, sink=Target.parse(sink, "sink", ("eventhub",)), stream_url=stream.url,
                          rest_url=rest.url if rest else None, stale_timeout=kw.pop("stale_timeout", 2.0),
                          batch_window_ms=kw.pop("batch_window_ms", 5.0), **kw)


async def run_until(ingestor: Ingestor, done: Callable[[], bool], timeout: float = 15.0) -> int:
    task = asyncio.create_task(ingestor.run())
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline or task.done():
            ingestor.stop.set()
            await task
            raise AssertionError(f"timed out; {ingestor.summary()}")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # anything extra (a duplicate) would arrive now
    ingestor.stop.set()
    return await task


def expected_bars(n: int = N_BARS) -> list[tuple[Any, ...]]:
    from shared.samples import btcusdt_1m_paths

    bars = read_klines(btcusdt_1m_paths()).bars[:n]
    return [(Kline.make_id("BTCUSDT", "1m", b.open_time), b.open_time, b.close_time, b.open, b.high, b.low,
             b.close, b.volume) for b in bars]


def expected_trades(n: int = N_TRADES) -> list[tuple[Any, ...]]:
    from shared.samples import trx_trades_path

    return [(t.trade_id, t.time, t.price, t.qty, t.is_buyer_maker) for t in read_trades(trx_trades_path())[:n]]


def published(pub: InMemoryPublisher) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    events = unpack(pub.events("market-data"))
    bars = [(e.event_id, e.open_time, e.close_time, e.open, e.high, e.low, e.close, e.volume)
            for e in events if isinstance(e, Kline)]
    trades = [(e.trade_id, e.trade_time, e.price, e.quantity, e.is_buyer_maker) for e in events if isinstance(e, Trade)]
    return bars, trades


def counts(pub: InMemoryPublisher, bars: int = N_BARS, trades: int = N_TRADES) -> Callable[[], bool]:
    def done() -> bool:
        b, t = published(pub)
        return len(b) >= bars and len(t) >= trades
    return done


def assert_equal_to_source(pub: InMemoryPublisher, bars: int = N_BARS, trades: int = N_TRADES) -> None:
    got_bars, got_trades = published(pub)
    assert got_bars == expected_bars(bars)
    assert got_trades == expected_trades(trades)
    assert pub.partition_keys["market-data"] == [e.symbol for e in pub.events("market-data")]  # type: ignore[attr-defined]


def make(st: IngestSettings, sink: EventSink | None = None, **kw: Any) -> tuple[Ingestor, InMemoryPublisher]:
    pub = InMemoryPublisher()
    ing = Ingestor(st, sink or PublisherSink(pub), kw.pop("malformed", InMemoryMalformedSink()), backoff_base=0.01,
                   **kw)
    return ing, pub


def test_combined_stream_with_open_updates_and_pings(rows: list[list[str]], trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with StreamServer(streams(rows, trades), {0: Fault(ping_every=25)}) as server:
            ing, pub = make(settings(server, None))
            assert await run_until(ing, counts(pub)) == 0
            assert_equal_to_source(pub)
            assert server.paths[0].startswith("/stream?streams=btcusdt@kline_1m/")
            assert server.pongs >= 20  # the client answered every ping (the server awaited each pong)
            assert ing.stats.open_updates == N_BARS  # the non-final updates were not published
            assert ing.reconnects == 0 and ing.stats.duplicates == 0 and ing.stats.malformed == 0
    asyncio.run(go())


def test_raw_stream_for_a_single_subscription(rows: list[list[str]], trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with StreamServer(streams(rows, trades)) as server:
            ing, pub = make(settings(server, None, trades=False))
            await run_until(ing, counts(pub, trades=0))
            assert server.paths == ["/ws/btcusdt@kline_1m"]
            assert_equal_to_source(pub, trades=0)
    asyncio.run(go())


def test_abrupt_disconnects_with_gaps_across_reconnects_are_backfilled(rows: list[list[str]],
                                                                       trades: list[dict[str, str]]) -> None:
    faults = {0: Fault(disconnect_after=60), 1: Fault(lose_before=7, disconnect_after=80),
              2: Fault(lose_before=3)}

    async def go() -> None:
        async with RestServer({("BTCUSDT", "1m"): rows}, {"TRXUSDT": trades}) as rest, \
                StreamServer(streams(rows, trades), faults) as server:
            ing, pub = make(settings(server, rest))
            await run_until(ing, counts(pub))
            assert_equal_to_source(pub)
            assert ing.reconnects == 2
            assert ing.stats.gaps == 4 and ing.stats.gaps_unfilled == 0
            assert ing.stats.bars_backfilled == 10 and ing.stats.trades_backfilled == 10
            assert {r[0] for r in rest.requests} == {"klines", "aggTrades"}
    asyncio.run(go())


def test_duplicates_after_a_reconnect_are_dropped(rows: list[list[str]], trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with StreamServer(streams(rows, trades), {0: Fault(disconnect_after=50), 1: Fault(replay=12)}) as server:
            ing, pub = make(settings(server, None))
            await run_until(ing, counts(pub))
            assert_equal_to_source(pub)
            assert ing.stats.duplicates == 24  # 12 per stream
    asyncio.run(go())


def test_a_silent_stream_is_reconnected_and_nothing_is_lost(rows: list[list[str]],
                                                            trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with StreamServer(streams(rows, trades), {0: Fault(silence_after=40)}) as server:
            ing, pub = make(settings(server, None, stale_timeout=0.4))
            await run_until(ing, counts(pub))
            assert_equal_to_source(pub)
            assert sum(c.state.stale_reconnects for c in ing.connections) == 1
            assert ing.reconnects == 1
    asyncio.run(go())


def test_rotation_before_the_24_hour_cut_loses_nothing(rows: list[list[str]], trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with RestServer({("BTCUSDT", "1m"): rows}, {"TRXUSDT": trades}) as rest, \
                StreamServer(streams(rows, trades), delay=0.002) as server:
            ing, pub = make(settings(server, rest), rotate_after=0.3)
            await run_until(ing, counts(pub))
            assert_equal_to_source(pub)
            assert sum(c.state.rotations for c in ing.connections) >= 1
    asyncio.run(go())


def test_malformed_messages_and_unknown_symbols_are_kept_never_published(
        rows: list[list[str]], trades: list[dict[str, str]], tmp_path: Path) -> None:
    bad_kline = json.dumps({"stream": KLINE, "data": {"e": "kline", "s": "BTCUSDT", "k": {
        "t": 1, "T": 60_000, "s": "BTCUSDT", "i": "1m", "o": "10", "c": "10", "h": "9", "l": "8", "v": "1",
        "n": 1, "x": True, "q": "1", "V": "0", "Q": "0", "B": "0"}}})
    frames = ["this is not json", json.dumps({"stream": "dogeusdt@trade", "data": {"e": "trade"}}), bad_kline,
              json.dumps({"stream": TRADE, "data": {"e": "trade", "s": "DOGEUSDT", "t": 1, "p": "1", "q": "1",
                                                    "T": 1, "m": True}})]

    async def go() -> None:
        async with StreamServer(streams(rows, trades), {0: Fault(inject={10: frames[:2], 30: frames[2:]})}) as server:
            ing, pub = make(settings(server, None), malformed=DirMalformedSink(tmp_path))
            await run_until(ing, counts(pub))
            assert_equal_to_source(pub)
            assert ing.stats.malformed == 4
            assert ing.reconnects == 0  # one bad frame does not end the read loop
    asyncio.run(go())
    kept = [json.loads(line) for f in tmp_path.glob("malformed-*.jsonl") for line in f.read_text().splitlines()]
    assert [k["raw"] for k in kept] == frames
    reasons = [k["reason"] for k in kept]
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "unknown stream 'dogeusdt@trade'"
    assert "high" in reasons[2]
    assert reasons[3].startswith("symbol 'DOGEUSDT' on stream trxusdt@trade")


class SlowSink:
    """A sink that takes 5 ms per batch (in the writer thread, as Event Hubs does), so a fast stream
    fills the pending queue."""

    blocking = True
    wants_rows = False

    def __init__(self) -> None:
        self.pub = InMemoryPublisher()
        self.inner = PublisherSink(self.pub)

    def write(self, items: Sequence[Item]) -> None:
        time.sleep(0.005)
        self.inner.write(items)

    def last_seq(self, key: StreamKey) -> tuple[int, int] | None:
        return None

    def close(self) -> None:
        pass


def test_queue_overflow_waits_for_the_sink_and_loses_nothing(rows: list[list[str]],
                                                            trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with StreamServer(streams(rows, trades)) as server:
            sink = SlowSink()
            ing, _ = make(settings(server, None, max_batch=5, max_pending=20), sink=sink)
            await run_until(ing, counts(sink.pub))
            assert_equal_to_source(sink.pub)
            assert ing.batcher.overflows > 0
            assert ing.reconnects == 0
    asyncio.run(go())


def test_rest_backfill_drops_the_still_open_last_kline(rows: list[list[str]], trades: list[dict[str, str]]) -> None:
    async def go() -> None:
        async with RestServer({("BTCUSDT", "1m"): rows}, open_last=True) as rest, \
                StreamServer(streams(rows, trades, with_trades=False),
                             {0: Fault(disconnect_after=30), 1: Fault(lose_before=5)}) as server:
            ing, pub = make(settings(server, rest, trades=False))
            await run_until(ing, counts(pub, trades=0))
            assert_equal_to_source(pub, trades=0)
            assert ing.stats.bars_backfilled == 5
    asyncio.run(go())


def test_rest_bars_not_closed_by_the_clock_are_not_published(rows: list[list[str]]) -> None:
    """A gap ending at the bar in progress: REST's rows up to `now` only, never an open bar."""
    async def go() -> None:
        now = int(rows[20][6])  # bar 20 closes exactly now: REST still calls it open
        async with RestServer({("BTCUSDT", "1m"): rows}) as rest, \
                StreamServer({KLINE: kline_records("BTCUSDT", [rows[0], rows[30]])}) as server:
            ing, pub = make(settings(server, rest, trades=False), clock_ms=lambda: now)
            await run_until(ing, lambda: len(pub.events("market-data")) >= 21)
            got = [e.open_time for e in pub.events("market-data")]  # type: ignore[attr-defined]
            assert got == [int(r[0]) for r in rows[:20]] + [int(rows[30][0])]
            assert ing.stats.gaps_unfilled == 1 and ing.stats.open_rest_bars_dropped >= 1
    asyncio.run(go())


def test_dir_sink_writes_binance_vision_files_once_and_in_order(rows: list[list[str]], trades: list[dict[str, str]],
                                                                tmp_path: Path) -> None:
    out = tmp_path / "new" / "data"
    faults = {0: Fault(disconnect_after=700), 1: Fault(replay=50)}

    async def go() -> None:
        async with StreamServer(streams(rows, trades, n_bars=1500), faults) as server:
            st = settings(server, None, sink=f"dir:{out}")
            sink = DirSink(out)
            ing, _ = make(st, sink=sink)
            await run_until(ing, lambda: sink.rows_written >= 1500 + N_TRADES)
    asyncio.run(go())
    source = kline_lines(1500)
    assert (out / "BTCUSDT-1m-2020-01-01.csv").read_text().splitlines() == source[:1440]
    assert (out / "BTCUSDT-1m-2020-01-02.csv").read_text().splitlines() == source[1440:]
    series = read_klines(sorted(out.glob("BTCUSDT-1m-*.csv")))  # what `marketflow replay` reads
    assert [(b.open_time, b.close) for b in series.bars] == [(e[1], e[6]) for e in expected_bars(1500)]
    ticks = read_trades(out / "TRXUSDT-trades-2025-03-04.csv")
    assert [(t.trade_id, t.time, t.price, t.qty, t.is_buyer_maker) for t in ticks] == expected_trades()

    async def restart() -> None:  # a restarted ingestor continues the files: no row twice
        async with StreamServer(streams(rows, trades, n_bars=1500)) as server:
            server.cursor[KLINE] = 1400
            sink = DirSink(out)
            ing, _ = make(settings(server, None, sink=f"dir:{out}"), sink=sink)
            await run_until(ing, lambda: ing.stats.duplicates >= 100 + N_TRADES)
            assert sink.rows_written == 0
    asyncio.run(restart())
    assert (out / "BTCUSDT-1m-2020-01-02.csv").read_text().splitlines() == source[1440:]
