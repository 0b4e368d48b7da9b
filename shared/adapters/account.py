"""The account snapshot `positions` publishes and `risk` reads, in a shared `DocumentStore`.

`positions` is the only writer, but it runs as several instances (one per partition owner of
`executions` and of `market-data`), all writing one account. So each batch is a transaction
(`StoredPositions`): load the document and its ETag, apply the batch's reports and marks to the
book, write it back conditional on that ETag; when another instance wrote in between, reload and
apply the same events again (a fill is booked once whatever happens: the book keys fills by
client order id and trade id, and a mark older than the symbol's last one is ignored).

`risk` reads it through `CachedAccount`: the ETag is checked at most every `state_refresh_s`
and the document downloaded only when it moved. No document means no account: `risk` refuses
to approve (`AccountUnavailable`), it never invents a flat one. Risk reads its own writes: after
approving an order it waits (re-reading the store, at most `account_wait_s`) until the order's
fill is booked in the snapshot before it decides the next signal, so a signal on the very bar
an order filled on (a paper fill at the next bar's open, a replay running faster than real time)
is checked against the account that holds the fill, as in `marketflow replay`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from shared.events import ExecutionReport, Kline, OrderIntent, client_order_id
from shared.pipeline.errors import InfrastructureError, LateEvent
from shared.pipeline.positions import PositionsHandler, account_from_json, account_to_json
from shared.pipeline.risk import AccountUnavailable
from shared.portfolio import AccountSnapshot, PositionBook

from .azure.settings import ConfigurationError
from .documents import DocumentConflict, DocumentStore

log = logging.getLogger(__name__)

ACCOUNT_KEY = "account/account.json"
ACCOUNT_CASH_SETTING = "MARKETFLOW_ACCOUNT_CASH"
MAX_ATTEMPTS = 8
# Recent fills looked at for "is this order booked yet" (the book keeps them as client order id:trade id).
RECENT_FILLS = 1_000
POLL_S = 0.02  # how often a wait for a booking re-checks the document's ETag


class StoredAccount(NamedTuple):
    """What risk reads from the document: the snapshot, its ETag, and the client order ids of the
    latest fills booked into it."""

    account: AccountSnapshot
    etag: str
    booked: frozenset[str]


def wall_ms() -> int:
    return int(time.time() * 1000)


class AccountStore:
    """The account document: the positions handler's state plus the snapshot risk reads."""

    def __init__(self, documents: DocumentStore, key: str = ACCOUNT_KEY) -> None:
        self.documents = documents
        self.key = key

    def load(self) -> tuple[PositionsHandler, str] | None:
        found = self.documents.get(self.key)
        if found is None:
            return None
        return PositionsHandler.restore(found.data["state"]), found.etag

    def save(self, handler: PositionsHandler, etag: str | None, now_ms: int) -> str:
        """Write conditional on `etag` (None: create); raises DocumentConflict when it moved."""
        doc: dict[str, Any] = {"account": account_to_json(handler.account()), "state": handler.snapshot(),
                               "written_at": now_ms}
        return self.documents.put(self.key, doc, etag)

    def snapshot(self) -> tuple[AccountSnapshot, str] | None:
        found = self.read()
        return None if found is None else (found.account, found.etag)

    def read(self) -> StoredAccount | None:
        found = self.documents.get(self.key)
        if found is None:
            return None
        fills = found.data["state"]["book"]["seen_fills"][-RECENT_FILLS:]
        return StoredAccount(account_from_json(found.data["account"]), found.etag,
                             frozenset(str(k).rsplit(":", 1)[0] for k in fills))

    def etag(self) -> str | None:
        return self.documents.etag(self.key)


class StoredPositions:
    """The positions handler as one transaction per batch against the account store.

    `begin()` loads the latest state; `on_report` / `on_kline` apply to it and remember the event;
    `commit()` writes it back (compare-and-set), re-applying the remembered events to a fresh load
    after a conflict. With no document yet, the book opens with `opening_cash` (the paper
    account's configured capital); without it, `begin()` raises ConfigurationError: positions
    never makes an account up either.
    """

    def __init__(self, store: AccountStore, *, interval: str = "1m", opening_cash: float | None = None,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.store = store
        self.interval = interval
        self.opening_cash = opening_cash
        self._clock = clock
        self.handler: PositionsHandler | None = None
        self._etag: str | None = None
        self._ops: list[ExecutionReport | Kline] = []
        self.conflicts = 0

    def begin(self) -> None:
        self.handler, self._etag = self._load()
        self._ops = []

    def _load(self) -> tuple[PositionsHandler, str | None]:
        loaded = self.store.load()
        if loaded is not None:
            return loaded
        if self.opening_cash is None:
            raise ConfigurationError(f"no account in the store and {ACCOUNT_CASH_SETTING} is not set: positions "
                                     "will not invent an opening balance")
        return PositionsHandler(PositionBook(cash=self.opening_cash), self.interval), None

    def _current(self) -> PositionsHandler:
        if self.handler is None:
            self.begin()
        assert self.handler is not None
        return self.handler

    def on_report(self, report: ExecutionReport) -> None:
        self._current().on_report(report)
        self._ops.append(report)

    def on_kline(self, kline: Kline) -> None:
        if self._current().on_kline(kline):
            self._ops.append(kline)

    def commit(self) -> None:
        """Write the batch's changes; raises (for a retry) only when storage is unreachable."""
        if not self._ops:
            return
        for _ in range(MAX_ATTEMPTS):
            handler = self._current()
            try:
                self._etag = self.store.save(handler, self._etag, self._clock())
                self._ops = []
                return
            except DocumentConflict:
                self.conflicts += 1
                ops, (self.handler, self._etag) = self._ops, self._load()
                for op in ops:
                    if isinstance(op, Kline):
                        try:
                            self.handler.on_kline(op)
                        except LateEvent:  # the other writer marked this symbol later already
                            continue
                    else:
                        self.handler.on_report(op)
        raise DocumentConflict(f"account document kept changing over {MAX_ATTEMPTS} attempts")

    def account(self) -> AccountSnapshot:
        return self._current().account()


class CachedAccount:
    """What `risk` calls per decision: the latest snapshot, re-checked every `refresh_ms`.

    The check is one ETag read; the document is downloaded only when it moved. Storage errors
    propagate (the batch is retried); a missing document raises AccountUnavailable. `expect(intent)`
    (called for each approved order) makes the following reads wait, re-checking every POLL_S, until
    that order has a fill booked in the document or `wait_ms` have passed since the approval (an
    order the executor's last look refused is never filled: the wait ends there, with a warning).
    """

    def __init__(self, store: AccountStore, refresh_ms: int = 1_000, clock: Callable[[], int] = wall_ms,
                 wait_ms: int = 10_000, sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.refresh_ms = refresh_ms
        self.wait_ms = wait_ms
        self._clock = clock
        self._sleep = sleep
        self._snapshot: AccountSnapshot | None = None
        self._etag: str | None = None
        self._booked: frozenset[str] = frozenset()
        self._next = 0
        self._expected: dict[str, int] = {}  # client order id -> wall ms when waiting for it ends
        self.reads = 0
        self.waited_ms = 0  # total time decisions waited for bookings
        self.unbooked = 0  # approved orders whose fill never showed up within wait_ms

    def expect(self, intent: OrderIntent) -> None:
        """An order risk approved: the next decisions wait until its fill is in the snapshot."""
        self._expected[client_order_id(intent.event_id)] = self._clock() + self.wait_ms

    def __call__(self) -> AccountSnapshot:
        now = self._clock()
        if self._snapshot is None or now >= self._next or self._expected:
            self._refresh(now)
        if self._expected:
            started = now
            while True:
                for coid in [c for c in self._expected if c in self._booked]:
                    del self._expected[coid]
                late = [c for c, until in self._expected.items() if now >= until]
                for coid in late:
                    del self._expected[coid]
                    self.unbooked += 1
                    log.warning("order %s approved by risk has no fill in the account snapshot after %d ms; "
                                "deciding without it", coid, self.wait_ms)
                if not self._expected:
                    break
                self._sleep(POLL_S)
                now = self._clock()
                self._refresh(now)
            self.waited_ms += now - started
        if self._snapshot is None:
            raise AccountUnavailable(f"no account snapshot in {self.store.key!r}: the positions function has "
                                     "not written one; risk approves nothing without a real account")
        return self._snapshot

    def _refresh(self, now: int) -> None:
        try:
            etag = self.store.etag()
            found = self.store.read() if etag is not None and etag != self._etag else None
        except Exception as exc:  # storage unreachable: not the signal's fault, retry the batch
            raise InfrastructureError(f"account store {self.store.key!r} unreadable: "
                                      f"{type(exc).__name__}") from exc
        self._next = now + self.refresh_ms
        if found is not None:
            self.reads += 1
            self._snapshot, self._etag, self._booked = found
