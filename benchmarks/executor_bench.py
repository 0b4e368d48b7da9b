"""Executor latency against the fake Binance on loopback, beside python-binance's bare call.

The fake (`tests/fake_binance.py`) runs in its own process on 127.0.0.1 with rate limits high
enough never to throttle. The contenders place the same orders (MARKET BUY ETHUSDT for 10 USDT,
by `quoteOrderQty`, then a MARKET SELL of the position), interleaved order by order (bare, then each
executor, round after round) so the machine's drift hits all alike:

- bare: `AsyncClient.create_order(...)` directly (python-binance 1.0.37, HMAC, FULL response);
  timed from the call to its parsed JSON.
- one executor per SQLite `synchronous` mode (FULL and NORMAL by default), each with its own
  store, book and risk engine: `Executor.on_intent(intent)` with the real pieces: the last look
  (`RiskEngine`), the SQLite intent store (WAL; the mode is read back from the store before
  timing), `BinanceVenue` on the same python-binance client (throttler, per-request headers, typed
  response), the book. Timed from the intent's arrival to: the request about to be sent (after
  store write and python-binance's signing, when aiohttp starts building the request: the
  executor's own path), the request fully written (its last byte handed to the socket), the
  response parsed into a `VenueOrder` (`BinanceVenue.submit` returned), and `on_intent` done
  (fill booked, record stored).

Then, when Azurite answers on 127.0.0.1:10002, the Table intent store's get + create (what the
executor does before a send with `MARKETFLOW_INTENT_STORE=table`) on it: a loopback figure, not
Azure's (there each call is a network round trip to the storage account; not measurable here).

Percentiles are over every timed order (no warm-up orders counted); the process's objects are
frozen out of the cyclic GC while timing, as the executor does after start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_binance.py"
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # Binance's documented example
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SYMBOL = "ETHUSDT"
QUOTE = "10"
BLOCK = 1  # orders per contender per turn: 1 alternates them order by order


def pct(values: list[int], q: float) -> float:
    """The q-quantile (nearest rank) of nanosecond values, in microseconds."""
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))
    return s[k] / 1000


def summary(values: list[int]) -> dict[str, float]:
    return {"p50_us": pct(values, 0.50), "p99_us": pct(values, 0.99), "p999_us": pct(values, 0.999),
            "n": float(len(values))}


def start_fake() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(FAKE), "--port", "0", "--weight-per-minute", "100000000", "--orders-per-10s",
         "100000000", "--orders-per-day", "100000000", "--balance", "USDT=1000000000", "--balance", "ETH=1000"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "fake Binance on " not in line:
        proc.kill()
        raise RuntimeError(f"fake Binance did not start: {line!r}")
    return proc, line.split("fake Binance on ", 1)[1].split(";", 1)[0]


def make_intent(i: int, now: int, held: float) -> Any:
    """Even i: a MARKET BUY for QUOTE USDT; odd i: a MARKET SELL of what is held, on the lot step
    (the position rule allows one long position per symbol)."""
    from shared.events import OrderIntent, OrderType, Side

    eid = f"{i:032x}"
    if i % 2 == 0:
        return OrderIntent(event_id=eid, correlation_id=eid, event_time=now, symbol=SYMBOL, strategy="bench",
                           side=Side.BUY, order_type=OrderType.MARKET, quote_quantity=float(QUOTE),
                           reference_price=3000.0, signal_id=eid)
    qty = round(int(held / 0.0001 + 1e-9) * 0.0001, 4)
    return OrderIntent(event_id=eid, correlation_id=eid, event_time=now, symbol=SYMBOL, strategy="bench",
                       side=Side.SELL, order_type=OrderType.MARKET, quantity=qty, reference_price=3000.0,
                       signal_id=eid)


class Timings:
    """One executor contender's splits, in nanoseconds per timed order."""

    def __init__(self) -> None:
        self.own: list[int] = []
        self.own_store: list[int] = []
        self.own_venue: list[int] = []
        self.adapter: list[int] = []
        self.written: list[int] = []
        self.to_parsed: list[int] = []
        self.done: list[int] = []

    def summary(self, bare: list[int], synchronous: str) -> dict[str, Any]:
        return {"own_path": summary(self.own), "own_store": summary(self.own_store),
                "own_venue": summary(self.own_venue), "adapter": summary(self.adapter),
                "written": summary(self.written), "parsed": summary(self.to_parsed), "done": summary(self.done),
                "synchronous": synchronous,
                "overhead_p99_pct": (pct(self.to_parsed, 0.99) / pct(bare, 0.99) - 1) * 100,
                "overhead_p50_pct": (pct(self.to_parsed, 0.50) / pct(bare, 0.50) - 1) * 100,
                "adapter_overhead_p99_pct": (pct(self.adapter, 0.99) / pct(bare, 0.99) - 1) * 100}


async def measure(base_url: str, n: int, modes: tuple[str, ...], progress: Any) -> dict[str, Any]:
    from binance import AsyncClient

    from shared.adapters.binance.credentials import Credentials
    from shared.adapters.binance.rest import Exchange
    from shared.adapters.binance.venue import BinanceVenue
    from shared.adapters.local import intent_store
    from shared.execution import Executor
    from shared.execution.venue import OrderRequest, VenueOrder
    from shared.portfolio import PositionBook
    from shared.risk import RiskConfig, RiskEngine

    exchanges: list[Exchange] = []
    parsed: list[int] = []
    entered: list[int] = []
    store_ns: list[int] = []

    class StampedVenue(BinanceVenue):
        async def submit(self, order: OrderRequest) -> VenueOrder:
            entered.append(time.perf_counter_ns())
            out = await super().submit(order)
            parsed.append(time.perf_counter_ns())
            return out

    class TimedStore:
        """The SQLite store, with the time of its calls before the send (get, create) summed."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def get(self, intent_id: str) -> Any:
            t = time.perf_counter_ns()
            try:
                return await self.inner.get(intent_id)
            finally:
                store_ns.append(time.perf_counter_ns() - t)

        async def create(self, record: Any) -> bool:
            t = time.perf_counter_ns()
            try:
                return bool(await self.inner.create(record))
            finally:
                store_ns.append(time.perf_counter_ns() - t)

    venue = await BinanceVenue.connect(base_url=base_url, credentials=Credentials(API_KEY, secret=SECRET),
                                       symbols=[SYMBOL], on_exchange=lambda name, ex: exchanges.append(ex))
    venue.__class__ = StampedVenue
    bare = AsyncClient(API_KEY, SECRET)
    bare.API_URL = base_url + "/api"
    bare.REQUEST_RECVWINDOW = 5000
    bare.timestamp_offset = venue.rest.offset_ms
    tmps = [tempfile.TemporaryDirectory(prefix=f"mf-bench-{m.lower()}-") for m in modes]
    stores = [intent_store.SqliteIntentStore(t.name, synchronous=m) for t, m in zip(tmps, modes, strict=True)]
    try:
        cfg = RiskConfig.replay().model_copy(update={"max_signal_age_s": 3600.0, "stale_market_data_s": 3600.0})
        now = int(time.time() * 1000)
        # One executor per mode, each with its own store, book and risk engine, on the same venue;
        # intent ids apart by mode (client order ids derive from them).
        executors = []
        for store in stores:
            risk = RiskEngine(cfg, filters=venue.exchange_info.current)
            risk.on_market(SYMBOL, 3000.0, now)
            executors.append(Executor(venue, risk, PositionBook(cash=1e9), TimedStore(store)))
        for store, mode in zip(stores, modes, strict=True):
            got = store.synchronous
            if got != mode:
                raise RuntimeError(f"the {mode} store runs synchronous={got}")
        warm = 200
        load_start = _load()
        bare_t: list[int] = []
        timings = [Timings() for _ in modes]
        seq = 0

        async def one_bare(record: bool) -> None:
            nonlocal seq
            seq += 1
            t0 = time.perf_counter_ns()
            size = {"side": "BUY", "quoteOrderQty": QUOTE} if seq % 2 else {"side": "SELL", "quantity": "0.0033"}
            r = await bare.create_order(symbol=SYMBOL, type="MARKET", newClientOrderId=f"bare-{seq}",
                                        newOrderRespType="FULL", **size)
            t1 = time.perf_counter_ns()
            assert r["status"] == "FILLED"
            if record:
                bare_t.append(t1 - t0)

        async def one_exec(m: int, i: int, record: bool) -> None:
            ex = executors[m]
            intent = make_intent(i + m * 10**9, now, ex.book.qty(SYMBOL))
            exchanges.clear()
            parsed.clear()
            entered.clear()
            store_ns.clear()
            t0 = time.perf_counter_ns()
            out = await ex.on_intent(intent, now)
            t1 = time.perf_counter_ns()
            assert out.reports and out.reports[-1].status.value == "FILLED", out
            if record:
                x = exchanges[-1]
                tm = timings[m]
                tm.own.append(x.start_ns - t0)
                tm.own_store.append(sum(store_ns))
                tm.own_venue.append(x.start_ns - entered[-1])
                tm.adapter.append(parsed[-1] - entered[-1])
                tm.written.append(x.written_ns - t0)
                tm.to_parsed.append(parsed[-1] - t0)
                tm.done.append(t1 - t0)

        for i in range(warm):
            await one_bare(False)
            for m in range(len(modes)):
                await one_exec(m, i, False)
        gc.collect()
        gc.freeze()
        try:
            k = warm
            while k < warm + n:
                for _ in range(BLOCK):
                    await one_bare(True)
                for m in range(len(modes)):
                    for i in range(k, min(k + BLOCK, warm + n)):
                        await one_exec(m, i, True)
                k += BLOCK
                if progress and (k - warm) % 2500 == 0:
                    progress(f"  executor bench ({'/'.join(modes)}): {k - warm:,}/{n:,}")
        finally:
            gc.unfreeze()
        bare_t = bare_t[:n]
        per_mode = {m: t.summary(bare_t, m) for m, t in zip(modes, timings, strict=True)}
        return {"bare": summary(bare_t), "modes": per_mode, "load": f"{load_start} -> {_load()}"}
    finally:
        await bare.close_connection()
        await venue.close()
        for store in stores:
            await store.close()
        for t in tmps:
            t.cleanup()


def _load() -> str:
    """The machine's load averages (1, 5, 15 min), for the result's conditions."""
    import os

    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


async def table_store(n: int, conn: str) -> dict[str, Any]:
    """The Table intent store's get + create (the executor's calls before a send) against Azurite on
    loopback: a floor for Azure's figure (there each is a network round trip to the storage account)."""
    import uuid

    from azure.data.tables.aio import TableServiceClient

    from shared.adapters.azure.table_intent_store import TableIntentStore
    from shared.execution.orders import OrderState, client_order_id
    from shared.execution.records import OrderRecord

    name = "bench" + uuid.uuid4().hex[:12]
    store = TableIntentStore.from_connection_string(conn, name)
    now = int(time.time() * 1000)
    ns: list[int] = []
    try:
        await store.ensure_table()
        for i in range(n + 50):
            intent = make_intent(2 * i, now, 0.0)
            rec = OrderRecord(intent.event_id, client_order_id(intent.event_id), SYMBOL, intent, None)
            rec.move(OrderState.SUBMITTED, "stored before sending", now)
            t = time.perf_counter_ns()
            assert await store.get(intent.event_id) is None
            assert await store.create(rec)
            if i >= 50:
                ns.append(time.perf_counter_ns() - t)
        return summary(ns)
    finally:
        await store.close()
        async with TableServiceClient.from_connection_string(conn) as service:
            await service.delete_table(name)


AZURITE = "UseDevelopmentStorage=true"  # Azurite's well-known account, Table on 127.0.0.1:10002


def run(n: int = 10_000, progress: Any = None, modes: tuple[str, ...] = ("FULL", "NORMAL"),
        table_n: int = 1_000) -> dict[str, Any]:
    """Bare call and one executor per SQLite mode, interleaved; then, if Azurite answers on
    127.0.0.1:10002, the Table store's get + create on it (`table`; None when it does not)."""
    proc, url = start_fake()
    try:
        out = asyncio.run(measure(url, n, modes, progress))
    finally:
        proc.terminate()
        proc.wait(10)
    out["table"] = None
    if table_n and _azurite_up():
        if progress:
            progress(f"  Table intent store on Azurite (loopback): {table_n:,} get + create")
        out["table"] = asyncio.run(table_store(table_n, AZURITE))
    return out


def _azurite_up() -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 10002), timeout=0.5):
        return True
    return False


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, print), indent=1, default=str))
