"""The fault matrix: the real executor (`shared.execution.Executor`) and python-binance's AsyncClient
(through `BinanceVenue`) against the strict fake Binance.

9 exchange faults (none; latency past the client's timeout, the order executed after it; 429 with
Retry-After; 418; 5XX -1007 with the order executed; 5XX without; the connection dropped after the
order was accepted; clock skew giving -1021; -2013 lag after a dropped connection)
x MARKET (BUY for 100 USDT) and LIMIT (BUY 0.01 @ 2900, resting)
x 5 crash points (none; before the intent is stored; stored, before the send; the exchange
answered, the answer lost; the answer read, before the record is saved) = 90 cases.

Each case: process 1 meets the fault and crashes where told; process 2 starts on the same SQLite
state dir (book restored, start-up reconciliation against the fake, which outlives both), and the
intent is redelivered (at-least-once). Then: zero duplicate orders at the fake, at most one order
for the intent, and the intent final (FILLED, or REJECTED when the fake never saw it), or open at
the fake exactly as the store holds it (a resting LIMIT: ACCEPTED and NEW).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from fake_binance import DOC_API_KEY, DOC_SECRET, FakeBinance, Fault

from shared.adapters.binance.credentials import Credentials
from shared.adapters.binance.venue import BinanceVenue, risk_hook
from shared.events import OrderIntent, OrderType, Side, Signal
from shared.execution.orders import OrderState
from shared.execution.venue import OrderRequest, VenueOrder
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine

# The executor core (intent store, async Executor, its crash helpers) lands separately; until it is
# on main this module is skipped, from then on it runs.
pytest.importorskip("shared.adapters.local.intent_store", reason="needs the executor core's intent store")
_support = pytest.importorskip("execution_support", reason="needs the executor core's test helpers")
from shared import execution  # noqa: E402
from shared.adapters.local import intent_store  # noqa: E402

Crash, CrashingStore = _support.Crash, _support.CrashingStore
SqliteIntentStore = intent_store.SqliteIntentStore
Executor, QueryPolicy, restore_book = execution.Executor, execution.QueryPolicy, execution.restore_book

SYMBOL = "ETHUSDT"
TIME_SCALE = 20  # the executor's backoff sleeps run 20x faster than its clock says
# Every request the executors make in a case runs under this timeout, queries and reconciliation
# included: 0.1 s timed out plain loopback requests when other suites loaded the 2 cores.
CLIENT_TIMEOUT_S = 0.5


class Clock:
    """The executor's wall clock: real time plus what its (shortened) sleeps skipped."""

    def __init__(self) -> None:
        self.skipped_ms = 0

    def now(self) -> int:
        return int(time.time() * 1000) + self.skipped_ms

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / TIME_SCALE)
        self.skipped_ms += round(seconds * 1000 * (1 - 1 / TIME_SCALE))


class CrashingVenue(BinanceVenue):
    """`crash = "before"`: the process dies with the order stored, before it is sent;
    `"after"`: it dies after the exchange answered, before the answer is read."""

    crash: str | None = None

    async def submit(self, order: OrderRequest) -> VenueOrder:
        when, self.crash = self.crash, None
        if when == "before":
            raise Crash("submit")
        out = await super().submit(order)
        if when == "after":
            raise Crash("submit")
        return out


def intent(kind: str, now: int) -> OrderIntent:
    side = Side.BUY
    s = Signal.create(symbol=SYMBOL, strategy="matrix", side=side, price=3000.0, bar_open_time=now - 60_000,
                      bar_close_time=now, market_event_id="m" * 32, correlation_id="c" * 32)
    if kind == "MARKET":
        return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id, event_time=now,
                           symbol=SYMBOL, strategy="matrix", side=side, order_type=OrderType.MARKET,
                           quote_quantity=100.0, reference_price=3000.0, signal_id=s.event_id)
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id, event_time=now,
                       symbol=SYMBOL, strategy="matrix", side=side, order_type=OrderType.LIMIT, quantity=0.01,
                       limit_price=2900.0, reference_price=3000.0, signal_id=s.event_id)


async def start(fake: FakeBinance, state_dir: Path, clock: Clock) -> tuple[Executor, CrashingVenue, Any]:
    """One executor process: venue (clock synced, exchangeInfo read), store, book restored,
    start-up reconciliation."""
    venue = await CrashingVenue.connect(base_url=fake.base_url, credentials=Credentials(DOC_API_KEY, secret=DOC_SECRET),
                                        symbols=[SYMBOL])
    venue.rest.client.REQUEST_TIMEOUT = CLIENT_TIMEOUT_S
    risk = RiskEngine(RiskConfig.replay(), filters=venue.exchange_info.current)
    venue.rest.on_error = risk_hook(risk, clock.now)
    risk.on_market(SYMBOL, 3000.0, clock.now())
    store = CrashingStore(SqliteIntentStore(state_dir, synchronous="NORMAL"))
    book = await restore_book(store, lambda: PositionBook(cash=10_000.0))
    ex = Executor(venue, risk, book, store, clock=clock.now, sleep=clock.sleep, query=QueryPolicy())
    await ex.reconcile(clock.now(), symbols=(SYMBOL,))
    return ex, venue, store


FAULTS: dict[str, Fault | None] = {
    "none": None,
    "latency_past_timeout": Fault("latency", "POST", "order", seconds=CLIENT_TIMEOUT_S + 0.25),
    "429_retry_after": Fault("429", "POST", "order", retry_after=1),
    "418_banned": Fault("418", "POST", "order", retry_after=1),
    "5xx_executed": Fault("5xx", "POST", "order", status=503, code=-1007, execute=True),
    "5xx_not_executed": Fault("5xx", "POST", "order", status=502),
    "drop_after_accept": Fault("drop", "POST", "order", execute=True),
    "clock_skew_1021": Fault("skew", "POST", "order", skew_ms=10_000),
    "lag_2013_after_drop": Fault("drop", "POST", "order", execute=True),
}
CRASHES = ("none", "before_store", "stored_before_send", "sent_answer_lost", "answer_read_before_save")


@pytest.mark.parametrize("crash", CRASHES)
@pytest.mark.parametrize("kind", ["MARKET", "LIMIT"])
@pytest.mark.parametrize("fault_name", list(FAULTS))
def test_fault_crash_restart_never_duplicates(fault_name: str, kind: str, crash: str, tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        # The fake keeps the executor's time, so an order that reaches it after the executor's
        # queries concluded "never placed" (its sleeps are shortened) is refused as Binance would
        # refuse it: outside its recvWindow.
        async with FakeBinance(clock=lambda: clock.now() / 1000) as fake:
            fake.add_hmac_account(DOC_API_KEY, DOC_SECRET, {"USDT": "10000"})
            it = intent(kind, clock.now())
            coid = "mf-" + it.event_id[:32]
            ex, venue, store = await start(fake, tmp_path, clock)
            template = FAULTS[fault_name]
            if template is not None:
                fake.inject(Fault(**{**template.__dict__}))
            if fault_name.startswith("lag"):
                fake.lag_queries = 2
            if crash == "before_store":
                store.crash_on["create"] = 1
            elif crash == "answer_read_before_save":
                store.crash_on["save"] = 1
            elif crash == "stored_before_send":
                venue.crash = "before"
            elif crash == "sent_answer_lost":
                venue.crash = "after"
            try:
                await ex.on_intent(it, clock.now())
            except Crash:
                pass
            finally:
                await venue.close()
            if fault_name.startswith("latency"):
                await asyncio.sleep(0.35)  # the request still in flight at the fake lands now
            fake.faults.clear()
            fake.lag_queries = 0
            clock.skipped_ms += 2_000   # the restart comes after any Retry-After / ban has lapsed
            # Restart on the same state dir, then the intent is redelivered.
            ex2, venue2, _ = await start(fake, tmp_path, clock)
            try:
                again = await ex2.on_intent(it, clock.now())
                await ex2.resolve_unknown(clock.now())
                # The executor's view: an open order's record in memory (its acknowledgement is
                # written with its next change), a finished one's in the store.
                rec = ex2.record(coid) or await ex2.store.get(it.event_id)
            finally:
                await venue2.close()
            at_fake = [o for o in fake.orders if o.client_order_id == coid]
            assert fake.duplicates() == {}
            assert len(at_fake) <= 1
            assert rec is not None
            if at_fake:
                o = at_fake[0]
                expected = {"FILLED": OrderState.FILLED, "NEW": OrderState.ACCEPTED,
                            "CANCELED": OrderState.CANCELED}[o.status]
                assert rec.state is expected, (rec.state, o.status)
            else:
                assert rec.state is OrderState.REJECTED
                assert again.reports == () or again.duplicate
    asyncio.run(go())

