"""Loopback Binance for the ingestor tests and bench: a market-stream server and a REST server on 127.0.0.1.

`StreamServer` (the `websockets` library, like Binance a real RFC 6455 server) serves `/ws/<stream>`
(raw) and `/stream?streams=a/b` (combined, wrapped as {"stream", "data"}) from recorded records: the
bundled klines (each closed bar preceded by non-final updates) and the TRXUSDT trade capture. Like a
live feed, each stream has one cursor that moves on across connections. Faults are scripted per
connection number: an abrupt disconnect (TCP abort) after n records, records lost before the
connection (a gap across a reconnect), records replayed (duplicates), silence, injected frames
(malformed, unknown symbol) and ping frames whose pongs are counted.

`RestServer` (aiohttp) answers `GET /api/v3/klines` and `/api/v3/aggTrades` from the same records,
the way Binance pages them; it can also return the still-open kline after the range asked for.
"""

from __future__ import annotations

import asyncio
import csv
import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve

from shared.samples import btcusdt_1m_paths, trx_trades_path


def kline_rows(limit: int | None = None) -> list[list[str]]:
    """The bundled BTCUSDT 1m archive rows (12 string columns each), in order."""
    rows: list[list[str]] = []
    for path in btcusdt_1m_paths():
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode()
        rows += [line.split(",") for line in text.splitlines() if line]
    return rows[:limit] if limit is not None else rows


def kline_lines(limit: int | None = None) -> list[str]:
    return [",".join(r) for r in kline_rows(limit)]


def trade_rows(limit: int | None = None) -> list[dict[str, str]]:
    """The TRXUSDT websocket capture as dicts (TradeId, Price, Quantity, TransactionTime in µs, ...)."""
    with trx_trades_path().open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[:limit] if limit is not None else rows


def kline_payload(symbol: str, row: Sequence[str], closed: bool = True, event_time: int | None = None,
                  close: str | None = None) -> dict[str, Any]:
    t, o, h, lo, c, v, ct, q, n, tb, tq, ig = row
    return {"e": "kline", "E": event_time if event_time is not None else int(ct) + 1, "s": symbol,
            "k": {"t": int(t), "T": int(ct), "s": symbol, "i": "1m", "f": 100, "L": 200, "o": o,
                  "c": close if close is not None else c, "h": h, "l": lo, "v": v, "n": int(n), "x": closed,
                  "q": q, "V": tb, "Q": tq, "B": ig}}


def trade_payload(row: dict[str, str]) -> dict[str, Any]:
    return {"e": "trade", "E": int(row["EventTime"]) // 1000, "s": row["Symbol"], "t": int(row["TradeId"]),
            "p": row["Price"], "q": row["Quantity"], "T": int(row["TransactionTime"]) // 1000,
            "m": row["IsBuyerMarketMaker"] == "1", "M": row["MUnknownParameter"] == "True"}


@dataclass
class Record:
    """One record of a stream: the payloads sent for it (non-final updates first, the record last)."""

    payloads: list[dict[str, Any]]


def kline_records(symbol: str, rows: Iterable[Sequence[str]], updates: int = 1) -> list[Record]:
    out = []
    for row in rows:
        opens = [kline_payload(symbol, row, closed=False, event_time=int(row[0]) + 1000 * (i + 1), close=row[1])
                 for i in range(updates)]
        out.append(Record([*opens, kline_payload(symbol, row)]))
    return out


def trade_records(rows: Iterable[dict[str, str]]) -> list[Record]:
    return [Record([trade_payload(r)]) for r in rows]


@dataclass
class Fault:
    """What connection number N (0-based, counted by the server) does."""

    lose_before: int = 0  # records of each stream skipped before this connection (lost while away)
    replay: int = 0  # each stream's cursor rewound by this many records (duplicates)
    disconnect_after: int | None = None  # abort the TCP connection after this many records
    silence_after: int | None = None  # stop sending (connection left open) after this many records
    inject: dict[int, list[str]] = field(default_factory=dict)  # after n records, these raw frames
    ping_every: int | None = None  # a ping frame after every n records


class StreamServer:
    def __init__(self, streams: dict[str, list[Record]], faults: dict[int, Fault] | None = None,
                 delay: float = 0.0) -> None:
        self.streams = streams
        self.cursor = dict.fromkeys(streams, 0)
        self.faults = faults or {}
        self.delay = delay
        self.connections = 0
        self.paths: list[str] = []
        self.pongs = 0
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> StreamServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def done(self) -> bool:
        return all(self.cursor[s] >= len(r) for s, r in self.streams.items())

    async def _handle(self, ws: ServerConnection) -> None:
        n = self.connections
        self.connections += 1
        assert ws.request is not None
        path = ws.request.path
        self.paths.append(path)
        parts = urlsplit(path)
        if parts.path.startswith("/ws/"):
            names, combined = [parts.path[4:]], False
        elif parts.path == "/stream":
            names, combined = parse_qs(parts.query)["streams"][0].split("/"), True
        else:
            await ws.close(1008, "bad path")
            return
        fault = self.faults.get(n, Fault())
        for name in names:
            if name not in self.streams:
                await ws.close(1008, f"unknown stream {name}")
                return
            self.cursor[name] = max(0, min(len(self.streams[name]), self.cursor[name] + fault.lose_before)
                                    - fault.replay)
        sent = 0
        while True:
            for raw in fault.inject.get(sent, ()):
                await ws.send(raw)
            if fault.disconnect_after is not None and sent >= fault.disconnect_after:
                ws.transport.abort()  # abrupt: no close frame, frames in flight are lost
                return
            if fault.silence_after is not None and sent >= fault.silence_after:
                await ws.wait_closed()
                return
            progressed = False
            for name in names:  # round robin over the connection's streams
                i = self.cursor[name]
                if i >= len(self.streams[name]):
                    continue
                for payload in self.streams[name][i].payloads:
                    await ws.send(json.dumps({"stream": name, "data": payload}) if combined else json.dumps(payload))
                self.cursor[name] = i + 1
                sent += 1
                progressed = True
                if fault.ping_every and sent % fault.ping_every == 0:
                    waiter = await ws.ping()
                    await waiter
                    self.pongs += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                if fault.disconnect_after is not None and sent >= fault.disconnect_after:
                    break
                if fault.silence_after is not None and sent >= fault.silence_after:
                    break
            if not progressed:
                if any(k > sent for k in fault.inject):
                    sent += 1
                    continue
                await ws.wait_closed()  # all sent: idle like a quiet market
                return


class RestServer:
    """`/api/v3/klines` and `/api/v3/aggTrades` from recorded rows; every request is logged."""

    def __init__(self, klines: dict[tuple[str, str], list[list[str]]] | None = None,
                 trades: dict[str, list[dict[str, str]]] | None = None, open_last: bool = False) -> None:
        self.klines = klines or {}
        self.trades = trades or {}
        self.open_last = open_last
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RestServer:
        app = web.Application()
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _klines(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("klines", q))
        rows = self.klines.get((q["symbol"], q["interval"]), [])
        start, end, limit = int(q.get("startTime", 0)), int(q.get("endTime", 2**62)), int(q.get("limit", 500))
        picked = [r for r in rows if start <= int(r[0]) <= end][:limit]
        out: list[list[Any]] = [[int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), *r[9:12]] for r in picked]
        if self.open_last and len(picked) < limit:
            later = [r for r in rows if int(r[0]) > end]
            if later:  # the bar in progress, as REST returns it: not closed yet, other values
                r = later[0]
                out.append([int(r[0]), r[1], r[1], r[1], r[1], "0.1", int(r[6]), "1.0", 1, "0", "0", "0"])
        return web.json_response(out)

    async def _agg_trades(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.requests.append(("aggTrades", q))
        rows = self.trades.get(q["symbol"], [])
        limit = int(q.get("limit", 500))
        if "fromId" in q:
            picked = [r for r in rows if int(r["TradeId"]) >= int(q["fromId"])]
        else:
            start, end = int(q["startTime"]), int(q["endTime"])
            picked = [r for r in rows if start <= int(r["TransactionTime"]) // 1000 <= end]
        out = [{"a": int(r["TradeId"]), "p": r["Price"], "q": r["Quantity"], "f": int(r["TradeId"]),
                "l": int(r["TradeId"]), "T": int(r["TransactionTime"]) // 1000, "m": r["IsBuyerMarketMaker"] == "1",
                "M": r["MUnknownParameter"] == "True"} for r in picked[:limit]]
        return web.json_response(out)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


class InThread:
    """Runs a StreamServer (and optionally a RestServer) on an event loop in a daemon thread, for
    tests and benches that drive the ingestor as a separate process."""

    def __init__(self, stream: StreamServer, rest: RestServer | None = None) -> None:
        import threading

        self.stream, self.rest = stream, rest
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.stream:
            if self.rest is not None:
                await self.rest.__aenter__()
            self._started.set()
            await self._stop.wait()
            if self.rest is not None:
                await self.rest.__aexit__(None, None, None)

    def __enter__(self) -> InThread:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("loopback servers did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
