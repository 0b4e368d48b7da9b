"""Executor soak: a million intents through the executor core and the paper venue, RSS measured.

The service's configuration: the SQLite intent store (WAL, `synchronous=NORMAL` here: a power cut
is not what this measures) in a temporary state dir, a book that keeps a bounded window of closed
round trips, the default risk engine with its limits opened wide (no rate limit, no signal age).
BUY and SELL alternate, each filled by the next price, so every intent is stored, sent,
acknowledged, filled, booked and saved with the book. RSS is read from /proc/self/status after
a warm-up and every 100,000 intents; the growth is the last reading minus the warm-up one. What
stays in memory is bounded (`DECISIONS_WINDOW`, `SEEN_FILLS_WINDOW`, the risk engine's
`DEDUP_CAPACITY`, the paper venue's `ORDER_HISTORY` / `TRADE_HISTORY`, the book's trades window);
the records themselves stay on disk.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from typing import Any

from shared.adapters.local.intent_store import SqliteIntentStore
from shared.events import OrderIntent, Side, Signal
from shared.execution import Executor, PaperVenue, run_sync
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine

INTENTS = 1_000_000
WARMUP = 20_000
EVERY = 100_000
SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _intent(i: int, side: Side, held: float) -> OrderIntent:
    t = T0 + i * 60_000
    s = Signal.create(symbol=SYMBOL, strategy="soak", side=side, price=7000.0, bar_open_time=t - 59_999,
                      bar_close_time=t, market_event_id="m" * 32, correlation_id="c" * 32)
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                       event_time=t, symbol=SYMBOL, strategy="soak", side=side,
                       quote_quantity=1_000.0 if side is Side.BUY else None,
                       quantity=held if side is Side.SELL else None, reference_price=7000.0, signal_id=s.event_id)


def run(intents: int = INTENTS, progress: Any = None) -> dict[str, Any]:
    config = RiskConfig.replay()
    with tempfile.TemporaryDirectory(prefix="mf-soak-") as state_dir:
        store = SqliteIntentStore(state_dir, synchronous="NORMAL")
        venue = PaperVenue(commission=0.001, balances={"USDT": 1e12})
        book = PositionBook(cash=1e12, trades_window=1_000)
        ex = Executor(venue, RiskEngine(config), book, store)
        samples: list[tuple[int, float]] = []
        base = 0.0
        started = time.perf_counter()
        gc.collect()
        for i in range(intents):
            buy = i % 2 == 0
            intent = _intent(i, Side.BUY if buy else Side.SELL, book.qty(SYMBOL))
            t = intent.event_time
            run_sync(ex.on_intent(intent, t))
            for update in venue.on_price(SYMBOL, 7000.0 + (i % 7), t + 1):
                run_sync(ex.on_order_update(update, t + 1))
            n = i + 1
            if n == WARMUP:
                gc.collect()
                base = rss_mib()
                samples.append((n, base))
            elif n % EVERY == 0 or n == intents:
                gc.collect()
                samples.append((n, rss_mib()))
                if progress is not None:
                    progress(f"  {n:,} intents, RSS {samples[-1][1]:.1f} MiB")
        elapsed = time.perf_counter() - started
        records = store.count()
        run_sync(store.close())
    return {"intents": intents, "records": records, "sent": venue.submitted, "elapsed_s": elapsed,
            "rss_base_mib": base, "rss_end_mib": samples[-1][1], "growth_mib": samples[-1][1] - base,
            "samples": samples, "decisions_kept": len(ex.decisions), "trades_kept": len(book.closed_trades)}


def render(r: dict[str, Any]) -> str:
    rows = "\n".join(f"| {n:,} | {m:.1f} |" for n, m in r["samples"])
    return f"""## Executor soak (bounded memory)

Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. {r['intents']:,} intents (BUY and SELL alternating,
each filled at the next price) through the executor core, the paper venue and the SQLite intent
store (WAL, synchronous=NORMAL) in one process; {r['sent']:,} orders sent, {r['records']:,} records
on disk; {r['elapsed_s']:.0f} s ({r['intents'] / r['elapsed_s']:,.0f} intents/s including intent
construction).

| intents | RSS MiB |
|---:|---:|
{rows}

- RSS growth from {WARMUP:,} intents to the end: **{r['growth_mib']:.1f} MiB** (target: under 50 MB).
- In memory at the end: {r['decisions_kept']} decisions, {r['trades_kept']} closed round trips (windows;
  the risk engine's duplicate window is 100,000 ids per layer).
"""


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else INTENTS
    print(render(run(n, progress=lambda s: print(s, file=sys.stderr))))
