"""Shared helpers of the executor tests: intents, a fake clock, and venue/store wrappers that
crash (a process dying between two steps) or fail ambiguously at a chosen call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.adapters.local.intent_store import SqliteIntentStore
from shared.events import OrderIntent, OrderType, Side, Signal
from shared.execution import Executor, PaperVenue, QueryPolicy, restore_book, run_sync
from shared.execution.store import IntentStore
from shared.execution.venue import OrderNotFound, OrderRequest, VenueAmbiguous, VenueOrder
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine

SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000


class Crash(BaseException):
    """The process died here (a BaseException: no `except Exception` in the code under test catches it)."""


def make_intent(side: Side, *, quantity: float | None = None, quote: float | None = None, t: int = T0,
                price: float = 7000.0, limit: float | None = None) -> OrderIntent:
    s = Signal.create(symbol=SYMBOL, strategy="test", side=side, price=price, bar_open_time=t - 59_999,
                      bar_close_time=t, market_event_id="m" * 32, correlation_id="c" * 32)
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                       event_time=s.event_time, symbol=SYMBOL, strategy="test", side=side,
                       order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET, quantity=quantity,
                       quote_quantity=quote, limit_price=limit, reference_price=price, signal_id=s.event_id)


class FakeTime:
    """Wall clock and sleep for the executor: sleeping moves the clock, nothing waits."""

    def __init__(self, now: int = T0) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += round(seconds * 1000)


class FaultyVenue:
    """A venue wrapper: `fail[method] = (kind, times)` makes the next `times` calls of `method`
    crash or fail. Kinds: "crash_before" / "crash_after" (the process dies before the call reaches
    the venue, or after the venue acted but before the answer is read), "ambiguous_before" /
    "ambiguous_after" (a timeout, with the venue not having / having acted), "not_found" (-2013)."""

    def __init__(self, inner: PaperVenue) -> None:
        self.inner = inner
        self.name = inner.name
        self.fail: dict[str, tuple[str, int]] = {}
        self.calls: dict[str, int] = {}

    def _fault(self, method: str) -> str | None:
        self.calls[method] = self.calls.get(method, 0) + 1
        kind, times = self.fail.get(method, ("", 0))
        if times <= 0:
            return None
        self.fail[method] = (kind, times - 1)
        return kind

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        kind = self._fault(method)
        if kind == "crash_before":
            raise Crash(method)
        if kind == "ambiguous_before":
            raise VenueAmbiguous("read timeout", http_status=None)
        if kind == "not_found":
            raise OrderNotFound()
        out = await getattr(self.inner, method)(*args, **kwargs)
        if kind == "crash_after":
            raise Crash(method)
        if kind == "ambiguous_after":
            raise VenueAmbiguous("HTTP 503", http_status=503)
        return out

    async def submit(self, order: OrderRequest) -> VenueOrder:
        return await self._call("submit", order)  # type: ignore[no-any-return]

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrder:
        return await self._call("cancel", symbol, client_order_id)  # type: ignore[no-any-return]

    async def query_order(self, symbol: str, client_order_id: str) -> VenueOrder:
        return await self._call("query_order", symbol, client_order_id)  # type: ignore[no-any-return]

    async def open_orders(self, symbol: str | None = None) -> list[Any]:
        return await self._call("open_orders", symbol)  # type: ignore[no-any-return]

    async def balances(self) -> list[Any]:
        return await self._call("balances")  # type: ignore[no-any-return]

    async def recent_trades(self, symbol: str, **kwargs: Any) -> list[Any]:
        return await self._call("recent_trades", symbol, **kwargs)  # type: ignore[no-any-return]


class CrashingStore:
    """A store wrapper whose `crash_on[method] = n` makes the n-th next call of `method` die
    before it writes anything."""

    def __init__(self, inner: IntentStore) -> None:
        self.inner = inner
        self.crash_on: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        countdown = self.crash_on.get(name)
        if countdown is None:
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            left = self.crash_on[name] - 1
            self.crash_on[name] = left
            if left == 0:
                raise Crash(name)
            return await target(*args, **kwargs)

        return call


def start(state_dir: Path, venue: Any, time: FakeTime, cash: float = 10_000.0,
          config: RiskConfig | None = None) -> Executor:
    """An executor process starting on a state dir: the book restored from its store, then
    reconciled with the venue (which outlives the process, as an exchange does)."""
    store = SqliteIntentStore(state_dir, synchronous="NORMAL")
    book = run_sync(restore_book(store, lambda: PositionBook(cash=cash)))
    ex = Executor(venue, RiskEngine(config or RiskConfig.replay()), book, store, clock=time.clock,
                  sleep=time.sleep, query=QueryPolicy())
    run_sync(ex.reconcile(time.now, symbols=(SYMBOL,)))
    return ex
