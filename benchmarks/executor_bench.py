"""Executor latency against the fake Binance on loopback, beside python-binance's bare call.

The fake (`tests/fake_binance.py`) runs in its own process on 127.0.0.1 with rate limits high
enough never to throttle. Two contenders place the same orders (MARKET BUY ETHUSDT for 10 USDT,
by `quoteOrderQty`), interleaved in blocks so drift hits both alike:

- bare: `AsyncClient.create_order(...)` directly (python-binance 1.0.37, HMAC, FULL response);
  timed from the call to its parsed JSON.
- executor: `Executor.on_intent(intent)` with the real pieces: the last look (`RiskEngine`), the
  SQLite intent store (WAL, `synchronous` as given), `BinanceVenue` on the same python-binance
  client (throttler, per-request headers, typed response), the book. Timed from the intent's
  arrival to: the request about to be sent (after store write and python-binance's signing,
  aiohttp's `on_request_start`: the executor's own path), the request fully written (the last
  `on_request_headers_sent` / `on_request_chunk_sent`), the response parsed into a `VenueOrder`
  (`BinanceVenue.submit` returned), and `on_intent` done (fill booked, record stored).

Percentiles are over every timed order (no warm-up orders counted); the process's objects are
frozen out of the cyclic GC while timing, as the executor does after start-up.
"""

from __future__ import annotations

import asyncio
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
BLOCK = 100


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


async def measure(base_url: str, n: int, synchronous: str, progress: Any) -> dict[str, Any]:
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
    tmp = tempfile.TemporaryDirectory(prefix="mf-bench-")
    try:
        cfg = RiskConfig.replay().model_copy(update={"max_signal_age_s": 3600.0, "stale_market_data_s": 3600.0})
        risk = RiskEngine(cfg, filters=venue.exchange_info.current)
        book = PositionBook(cash=1e9)
        store = TimedStore(intent_store.SqliteIntentStore(tmp.name, synchronous=synchronous))  # type: ignore[arg-type]
        ex = Executor(venue, risk, book, store)
        now = int(time.time() * 1000)
        risk.on_market(SYMBOL, 3000.0, now)
        warm = 200
        bare_t: list[int] = []
        own: list[int] = []
        own_store: list[int] = []
        own_venue: list[int] = []
        adapter: list[int] = []
        written: list[int] = []
        to_parsed: list[int] = []
        done: list[int] = []
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

        async def one_exec(i: int, record: bool) -> None:
            intent = make_intent(i, now, book.qty(SYMBOL))
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
                own.append(x.start_ns - t0)
                own_store.append(sum(store_ns))
                own_venue.append(x.start_ns - entered[-1])
                adapter.append(parsed[-1] - entered[-1])
                written.append(x.written_ns - t0)
                to_parsed.append(parsed[-1] - t0)
                done.append(t1 - t0)

        for i in range(warm):
            await one_bare(False)
            await one_exec(i, False)
        gc.collect()
        gc.freeze()
        try:
            k = warm
            while k < warm + n:
                for _ in range(BLOCK):
                    await one_bare(True)
                for i in range(k, min(k + BLOCK, warm + n)):
                    await one_exec(i, True)
                k += BLOCK
                if progress and (k - warm) % 2500 == 0:
                    progress(f"  executor bench ({synchronous}): {k - warm:,}/{n:,}")
        finally:
            gc.unfreeze()
        bare_t = bare_t[:n]
        return {"bare": summary(bare_t), "own_path": summary(own), "own_store": summary(own_store),
                "own_venue": summary(own_venue), "adapter": summary(adapter), "written": summary(written),
                "parsed": summary(to_parsed), "done": summary(done), "synchronous": synchronous,
                "overhead_p99_pct": (pct(to_parsed, 0.99) / pct(bare_t, 0.99) - 1) * 100,
                "overhead_p50_pct": (pct(to_parsed, 0.50) / pct(bare_t, 0.50) - 1) * 100,
                "adapter_overhead_p99_pct": (pct(adapter, 0.99) / pct(bare_t, 0.99) - 1) * 100}
    finally:
        await bare.close_connection()
        await venue.close()
        tmp.cleanup()


def run(n: int = 10_000, progress: Any = None, synchronous: str = "FULL") -> dict[str, Any]:
    proc, url = start_fake()
    try:
        return asyncio.run(measure(url, n, synchronous, progress))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, print), indent=1, default=str))
