"""The executor's core: the single writer of orders and of the position book of one account.

For each intent, in this order:

1. The intent store is asked first: an intent already stored (at any state) is a redelivery and
   sends nothing.
2. The last look (risk layer 2) checks it against the exact book and the orders in flight. A
   rejection is stored too (REJECTED, with its reasons), so a redelivery is recognized later.
3. The approved order is stored as SUBMITTED, with the exact request (decimal strings, the client
   order id derived from the intent id), and only then sent.
4. The venue's answer moves the order through the transition table (`orders.TRANSITIONS`); new
   fills go into the book, and the book is saved in the same store operation as the record.
   A rejection (-1013, -2010, 429, 418) is final; a ban is reported to risk, which halts trading.
5. An ambiguous outcome (timeout, transport error, 5xx, -1007, an unreadable response) moves the
   order to UNKNOWN, and the venue is queried by client order id with backoff (`QueryPolicy`):
   "not found" right after a send may mean "not visible yet", so it is asked again. Only when the
   order is still not found longer after its send than the venue would accept the request
   (`conclusive_after_ms`, above Binance's recvWindow) is it REJECTED as never placed. It is never
   resent: the signal is lost, not doubled.

At start-up, `reconcile` asks the venue about every order the store holds as sent and not final,
and compares balances with the book; every difference becomes a `ReconciliationDifference` and
is resolved toward the venue. Fills a query does not carry come from the venue's recent trades.

The core is async (a venue is I/O). A replay drives the same calls with `run_sync`, since the
paper venue and the in-memory store never wait: one code path. Everything it keeps in memory is
bounded: the open orders (by the venue's own open-order limits), and the latest decisions and
differences (`DECISIONS_WINDOW`, `DIFFERENCES_WINDOW`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple, TypeVar

from shared.events import ExecutionReport, OrderIntent, OrderStatus, OrderType, RiskDecision
from shared.events.base import trusted
from shared.events.reconciliation import ReconciliationDifference
from shared.events.trading import Fill
from shared.portfolio import PositionBook
from shared.risk import RiskEngine
from shared.symbols import split_symbol

from .orders import CLIENT_ORDER_ID_PREFIX, FINAL, FROM_VENUE, OrderState, client_order_id, is_ours
from .records import OrderRecord
from .store import IntentStore, MemoryIntentStore
from .venue import (
    Banned,
    OrderNotFound,
    OrderRequest,
    RateLimited,
    TimeInForce,
    Venue,
    VenueError,
    VenueOrder,
    VenueOrderStatus,
    VenueRejected,
    to_decimal,
)

log = logging.getLogger("marketflow.executor")

DECISIONS_WINDOW = 1_000     # latest last-look decisions kept in memory
DIFFERENCES_WINDOW = 1_000   # latest reconciliation differences kept in memory
_S = OrderState
_REPORTED = {_S.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED, _S.FILLED: OrderStatus.FILLED,
             _S.CANCELED: OrderStatus.CANCELED, _S.REJECTED: OrderStatus.REJECTED, _S.EXPIRED: OrderStatus.EXPIRED}
_QTY_EPS = Decimal("1e-12")
T = TypeVar("T")


class QueryPolicy(NamedTuple):
    """How an ambiguous order is asked after: `attempts` queries, the first at once, then waits of
    `first_delay_s` growing by `factor` up to `max_delay_s` (0.25, 0.5, 1, 2, 4 s: 7.75 s in all).
    "Not found" is conclusive only `conclusive_after_ms` after the send: Binance refuses a request
    that arrives later than its recvWindow (at most 5 s here), so by then it can never appear."""

    attempts: int = 6
    first_delay_s: float = 0.25
    factor: float = 2.0
    max_delay_s: float = 4.0
    conclusive_after_ms: int = 6_000


DEFAULT_QUERY = QueryPolicy()


class IntentOutcome(NamedTuple):
    """What one intent did: the last look's decision (None for a plain approval), the reports to
    publish, and whether it was a redelivery (then nothing was decided or sent)."""

    decision: RiskDecision | None
    reports: tuple[ExecutionReport, ...]
    duplicate: bool = False


class Reconciled(NamedTuple):
    reports: tuple[ExecutionReport, ...]
    differences: tuple[ReconciliationDifference, ...]


def run_sync(step: Coroutine[Any, Any, T]) -> T:
    """Run an executor call that never waits (paper venue, in-memory or SQLite store) to its end on
    this thread, without an event loop: how the replay calls the same async core."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    step.close()
    raise RuntimeError("an executor call waited on I/O; run it on an event loop instead")


class Executor:
    """One account's executor: venue, risk engine (last look), position book and intent store."""

    def __init__(self, venue: Venue, risk: RiskEngine, book: PositionBook, store: IntentStore | None = None, *,
                 clock: Callable[[], int] | None = None, sleep: Callable[[float], Awaitable[None]] | None = None,
                 query: QueryPolicy = DEFAULT_QUERY, decisions_window: int = DECISIONS_WINDOW,
                 differences_window: int = DIFFERENCES_WINDOW) -> None:
        self.venue = venue
        self.risk = risk
        self.book = book
        self.store: IntentStore = store if store is not None else MemoryIntentStore()
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._sleep = sleep or asyncio.sleep
        self.query = query
        self.open: dict[str, OrderRecord] = {}          # client order id -> record sent and not final
        self.in_flight: dict[str, OrderIntent] = {}     # the same orders' intents, for the last look
        self.decisions: deque[RiskDecision] = deque(maxlen=decisions_window)
        self.differences: deque[ReconciliationDifference] = deque(maxlen=differences_window)
        self.sent = 0                                   # orders handed to the venue by this process

    def in_flight_for(self, symbol: str) -> int:
        return sum(1 for i in self.in_flight.values() if i.symbol == symbol)

    # -- intents -----------------------------------------------------------------------------
    async def on_intent(self, intent: OrderIntent, now: int) -> IntentOutcome:
        """Store-check, last look, store, send (see the module doc)."""
        if await self.store.get(intent.event_id) is not None:
            return IntentOutcome(None, (), True)
        decision, approved = self.risk.last_look(intent, self.book.snapshot_account(), self.in_flight.values(), now)
        if decision is not None:
            self.decisions.append(decision)
        coid = client_order_id(intent.event_id)
        if approved is None:
            assert decision is not None
            rec = OrderRecord(intent.event_id, coid, intent.symbol, intent, None)
            why = f"last look: {','.join(decision.reasons)} {decision.detail}".strip()
            rec.move(_S.REJECTED, why, now)
            rec.reject_reason = why
            created = await self.store.create(rec)
            return IntentOutcome(decision, (), not created)
        rec = OrderRecord(intent.event_id, coid, intent.symbol, approved, self._request(approved, coid))
        rec.move(_S.SUBMITTED, "stored before sending", now)
        rec.sent_at = self._clock()
        if not await self.store.create(rec):
            return IntentOutcome(decision, (), True)  # another writer stored it first: not ours to send
        self.open[coid] = rec
        self.in_flight[coid] = approved
        return IntentOutcome(decision, await self._send(rec, now))

    def _request(self, intent: OrderIntent, coid: str) -> OrderRequest:
        """The exact request: quantities rounded to the symbol's steps (risk already sized them on
        those steps; this only removes float noise) and formatted as decimals, never float reprs."""
        fs = self.risk.filters[intent.symbol] if self.risk.filters is not None and intent.symbol in (
            self.risk.filters) else None
        limit = intent.order_type is OrderType.LIMIT
        qty = quote = price = None
        if intent.quantity is not None:
            step = None
            if fs is not None:
                # Binance sends a disabled step as "0.00000000": zero is zero whatever its digits.
                step = fs.lot_step_str if limit or not fs.mkt_step > 0 else fs.mkt_step_str
            if step is not None and not Decimal(step or "0") > 0:
                step = None
            qty = to_decimal(intent.quantity, step, rounding=ROUND_HALF_EVEN)
        if intent.quote_quantity is not None:
            quote = to_decimal(intent.quote_quantity, Decimal(1).scaleb(-fs.quote_precision) if fs else None,
                               rounding=ROUND_DOWN)
        if limit and intent.limit_price is not None:
            tick = fs.tick_str if fs is not None and fs.tick_size > 0 else None  # a disabled tick is "0.00000000"
            price = to_decimal(intent.limit_price, tick, rounding=ROUND_HALF_EVEN)
        for value in (qty, quote, price):
            if value is not None and value <= 0:
                raise ValueError(f"intent {intent.event_id} rounds to a zero order: {intent!r}")
        # From a validated intent, exact decimals and the derived client id: see `trusted`.
        return trusted(OrderRequest, {
            "symbol": intent.symbol, "side": intent.side, "order_type": intent.order_type, "client_order_id": coid,
            "quantity": qty, "quote_quantity": quote, "price": price,
            "time_in_force": TimeInForce.GTC if limit else None})

    async def _send(self, rec: OrderRecord, now: int) -> tuple[ExecutionReport, ...]:
        assert rec.request is not None
        try:
            self.sent += 1
            answer = await self.venue.submit(rec.request)
        except (VenueRejected, RateLimited, Banned) as err:
            self._report_error(err, now)
            return await self._reject(rec, f"venue refused: {_describe(err)}", now)
        except Exception as err:  # VenueAmbiguous, or an answer that cannot be read: it may have been placed
            if isinstance(err, VenueError):
                self._report_error(err, now)
            rec.move(_S.UNKNOWN, f"ambiguous send: {_describe(err)}", now)
            await self.store.save(rec)
            log.warning("order %s outcome unknown after send (%s); querying", rec.client_order_id, _describe(err))
            return await self._resolve(rec, now)
        return await self._apply(rec, answer, now, "submit response")

    # -- venue updates -----------------------------------------------------------------------
    async def on_order_update(self, order: VenueOrder, now: int) -> tuple[ExecutionReport, ...]:
        """An order's state as the venue pushed it (the paper venue's fills, a user data stream).
        Updates of final or unknown orders change nothing."""
        rec = self.open.get(order.client_order_id)
        if rec is None:
            rec = await self._stored(order.client_order_id)
            if rec is None or rec.state in FINAL:
                return ()
        return await self._apply(rec, order, now, "venue update")

    async def _stored(self, coid: str) -> OrderRecord | None:
        if not is_ours(coid):
            return None
        rec = await self.store.get(coid[len(CLIENT_ORDER_ID_PREFIX):])
        return rec if rec is not None and rec.client_order_id == coid else None

    async def _apply(self, rec: OrderRecord, order: VenueOrder, now: int, cause: str) -> tuple[ExecutionReport, ...]:
        """Move a record to what the venue reports, book its new fills, save record and book
        together, and build the report to publish (none for an acknowledgement)."""
        if rec.venue_order_id is None:
            rec.venue_order_id = order.order_id
        if order.status is VenueOrderStatus.NEW and not order.executed_qty and not rec.fills:
            # The common acknowledgement: accepted, nothing filled yet (no report to publish). It is
            # written with the record's next change, not alone: stored as SUBMITTED, an order is
            # reconciled with the venue after a crash all the same.
            if rec.state is not _S.ACCEPTED:
                rec.move(_S.ACCEPTED, f"{cause}: NEW", now)
                if self._from_unknown(rec):
                    await self.store.save(rec)
            return ()
        if rec.fills:
            applied = rec.applied_trade_ids
            new = [f for f in order.fills if f.trade_id not in applied]
        else:
            applied = set()
            new = list(order.fills)
        have = rec.executed_qty  # what the applied fills add up to
        for f in new:
            have += f.qty
        if order.executed_qty - have > _QTY_EPS:
            # A query or an open-orders item carries no fills: they are in the account's trades.
            trades = await self.venue.recent_trades(rec.symbol, order_id=order.order_id)
            seen = applied | {f.trade_id for f in new}
            for t in trades:
                if t.trade_id not in seen:
                    new.append(t.as_fill())
                    seen.add(t.trade_id)
                    have += t.qty
        target = FROM_VENUE[order.status]
        complete = order.executed_qty - have <= _QTY_EPS
        if target in FINAL and not complete:
            # Final at the venue but not every fill is visible yet: stay open, ask again later.
            target = _S.PARTIALLY_FILLED if have > 0 else rec.state
            cause = f"{cause}; {order.status} with fills not yet visible"
        elif target is _S.ACCEPTED and have > 0:
            target = _S.PARTIALLY_FILLED
        if target is _S.PARTIALLY_FILLED and not new and rec.state is _S.PARTIALLY_FILLED:
            return ()
        if target is rec.state and not new:
            return ()
        if target is not rec.state or target is _S.PARTIALLY_FILLED:
            rec.move(target, f"{cause}: {order.status}", now)
        for f in new:
            # From a validated venue answer (its model checked every number): see `trusted`.
            rec.fills.append(trusted(Fill, {"price": float(f.price), "quantity": float(f.qty),
                                            "commission": float(f.commission),
                                            "commission_asset": f.commission_asset, "trade_id": f.trade_id}))
        rec.executed_qty = have
        rec.cumulative_quote_qty = order.cumulative_quote_qty
        status = _REPORTED.get(rec.state)
        report = None
        if status is not None:
            if status is OrderStatus.REJECTED and not rec.reject_reason:
                rec.reject_reason = f"venue: {order.status}"
            report = self._report(rec, status, order.event_time or now)
            if new:
                self.book.apply(report)
        await self.store.save(rec, self.book if new else None)
        if rec.state in FINAL:
            self._close(rec)
        return (report,) if report is not None else ()

    @staticmethod
    def _from_unknown(rec: OrderRecord) -> bool:
        """Whether the latest transition settled an UNKNOWN (that one is written at once)."""
        return bool(rec.transitions) and rec.transitions[-1].from_state is _S.UNKNOWN

    async def _reject(self, rec: OrderRecord, why: str, now: int) -> tuple[ExecutionReport, ...]:
        rec.move(_S.REJECTED, why, now)
        rec.reject_reason = why
        await self.store.save(rec)
        self._close(rec)
        return (self._report(rec, OrderStatus.REJECTED, now),)

    def _close(self, rec: OrderRecord) -> None:
        self.open.pop(rec.client_order_id, None)
        self.in_flight.pop(rec.client_order_id, None)

    def _report(self, rec: OrderRecord, status: OrderStatus, event_time: int) -> ExecutionReport:
        base, quote = self._assets(rec.symbol)
        return ExecutionReport.create(intent=rec.intent, status=status, venue=self.venue.name,  # type: ignore[arg-type]
                                      order_id=rec.venue_order_id or 0, base_asset=base, quote_asset=quote,
                                      fills=tuple(rec.fills), event_time=event_time,
                                      reject_reason=rec.reject_reason if status is OrderStatus.REJECTED else "")

    def _assets(self, symbol: str) -> tuple[str, str]:
        filters = self.risk.filters
        if filters is not None and symbol in filters:
            fs = filters[symbol]
            return fs.base_asset, fs.quote_asset
        return split_symbol(symbol)

    def _report_error(self, err: VenueError, now: int) -> None:
        """Every venue error goes to risk; a ban (429, 418, -1003) halts new orders until it lapses."""
        retry = getattr(err, "retry_after_s", None)
        if isinstance(err, Banned) and err.until_ms is not None:
            retry = max((err.until_ms - now) / 1000, 1.0)
        if self.risk.report_exchange_error(err.http_status, err.code, now, retry, err.detail):
            log.error("venue ban: HTTP %s code %s (%s); trading HALTED", err.http_status, err.code, err.detail)

    # -- ambiguity ---------------------------------------------------------------------------
    async def _resolve(self, rec: OrderRecord, now: int) -> tuple[ExecutionReport, ...]:
        """Ask the venue about an order whose send may or may not have reached it (QueryPolicy).
        Returns the reports of what it learned; the order stays UNKNOWN if it learned nothing."""
        policy = self.query
        delay = policy.first_delay_s
        for attempt in range(policy.attempts):
            if attempt:
                await self._sleep(delay)
                delay = min(delay * policy.factor, policy.max_delay_s)
            try:
                order = await self.venue.query_order(rec.symbol, rec.client_order_id)
            except OrderNotFound:
                if self._clock() - (rec.sent_at or 0) >= policy.conclusive_after_ms:
                    return await self._reject(
                        rec, f"not found at the venue {attempt + 1} time(s), the last "
                        f"{policy.conclusive_after_ms} ms or more after the send: never placed, not resent", now)
                continue
            except (RateLimited, Banned) as err:
                self._report_error(err, now)
                break
            except Exception as err:  # still ambiguous: ask again
                if isinstance(err, VenueError):
                    self._report_error(err, now)
                log.warning("query of %s failed (%s)", rec.client_order_id, _describe(err))
                continue
            return await self._apply(rec, order, now, "query")
        if rec.state is not _S.UNKNOWN:
            rec.move(_S.UNKNOWN, "query gave no answer", now)
            await self.store.save(rec)
        return ()

    async def resolve_unknown(self, now: int) -> tuple[ExecutionReport, ...]:
        """Ask again about every order still UNKNOWN (a service calls this now and then)."""
        out: list[ExecutionReport] = []
        for rec in [r for r in self.open.values() if r.state is _S.UNKNOWN]:
            out.extend(await self._resolve(rec, now))
        return tuple(out)

    # -- start-up ----------------------------------------------------------------------------
    async def reconcile(self, now: int, *, symbols: tuple[str, ...] = ()) -> Reconciled:
        """Reconcile the store's open orders with the venue's open orders, trades and queries,
        and the venue's balances with the book; every difference is an event, resolved toward
        the venue. `symbols` names markets whose base balances the book must agree with even
        when it holds none of them."""
        reports: list[ExecutionReport] = []
        diffs: list[ReconciliationDifference] = []
        for rec in await self.store.open_records():
            self.open[rec.client_order_id] = rec
            if rec.request is not None:
                self.in_flight[rec.client_order_id] = rec.intent
        venue_open = {o.client_order_id: o for o in await self.venue.open_orders()}
        for rec in list(self.open.values()):
            before = rec.state
            if before is _S.INITIALIZED:
                got = await self._reject(rec, "found INITIALIZED at start-up: never sent", now)
            elif rec.client_order_id in venue_open:
                got = await self._apply(rec, venue_open[rec.client_order_id], now, "reconciled with open orders")
            else:
                got = await self._resolve(rec, now)
            reports.extend(got)
            if rec.state is not before:
                diffs.append(self._differ("order", rec.client_order_id, before.value, rec.state.value,
                                          f"moved to {rec.state.value} as the venue says", now, rec.symbol))
        for coid, order in venue_open.items():
            if coid in self.open or not is_ours(coid):
                continue
            stored = await self._stored(coid)
            ours: str = stored.state.value if stored is not None else "not stored"
            try:
                await self.venue.cancel(order.symbol, coid)
                how = "canceled: an open order the store does not hold as open"
            except VenueError as err:
                self._report_error(err, now)
                how = f"cancel failed: {_describe(err)}"
            diffs.append(self._differ("orphan_order", coid, ours, order.status.value, how, now, order.symbol))
        diffs.extend(await self._reconcile_balances(now, symbols))
        return Reconciled(tuple(reports), tuple(diffs))

    async def _reconcile_balances(self, now: int, symbols: tuple[str, ...]) -> list[ReconciliationDifference]:
        venue = {b.asset: b.total for b in await self.venue.balances()}
        book = self.book
        snap = book.snapshot_account()
        assets: dict[str, tuple[str | None, float]] = {book.quote_asset: (None, 0.0)}
        for name in {*snap.positions, *symbols}:
            base, _ = self._assets(name)
            pos = snap.positions.get(name)
            mark = pos[2] if pos is not None else 0.0
            if not mark:
                last = self.risk.last_price(name)
                mark = last[0] if last is not None else 0.0
            assets[base] = (name, mark)
        for asset in book.snapshot()["balances"]:
            assets.setdefault(asset, (None, 0.0))
        # An asset with an order still unresolved (its fills may yet arrive) is reported, not set:
        # setting it now would count those fills twice once they are applied.
        unsettled: set[str] = set()
        for rec in self.open.values():
            if rec.state in (_S.UNKNOWN, _S.SUBMITTED, _S.INITIALIZED):
                unsettled.update(self._assets(rec.symbol))
        diffs = []
        changed = False
        for asset, (sym, mark) in assets.items():
            ours = book.balance(asset)
            theirs = venue.get(asset, Decimal(0))
            if abs(Decimal(repr(ours)) - theirs) <= Decimal("1e-8") + abs(theirs) * Decimal("1e-9"):
                continue
            if asset in unsettled:
                how = "not set yet: an order of this asset is still unresolved"
            else:
                book.set_balance(asset, float(theirs), symbol=sym, price=mark)
                how = "book set to the venue's balance"
                changed = True
            diffs.append(self._differ("balance", asset, repr(ours), str(theirs), how, now, sym or ""))
        if changed:
            await self.store.save_book(book)
        return diffs

    def _differ(self, subject: Any, key: str, ours: str, venue: str, resolution: str, now: int,
                symbol: str = "") -> ReconciliationDifference:
        diff = ReconciliationDifference.create(subject=subject, key=key, ours=ours, venue=venue,
                                               resolution=resolution, event_time=now, symbol=symbol)
        self.differences.append(diff)
        log.warning("reconciliation: %s %s ours=%s venue=%s: %s", subject, key, ours, venue, resolution)
        return diff

    def record(self, client_order_id: str) -> OrderRecord | None:
        """An open order's record (tests and the operator's view)."""
        return self.open.get(client_order_id)


def _describe(err: BaseException) -> str:
    if isinstance(err, VenueError):
        parts = [type(err).__name__]
        if err.http_status is not None:
            parts.append(f"HTTP {err.http_status}")
        if err.code is not None:
            parts.append(f"code {err.code}")
        if err.detail:
            parts.append(err.detail)
        return " ".join(parts)
    return f"{type(err).__name__}: {err}"[:300]

