"""The durable intent store: the executor's idempotency key and its memory across restarts.

Every intent is written here before anything is sent, and stays: a redelivered intent is found
at any state, so it never becomes a second order (Binance keeps a client order id unique only
among open orders; a resend after a fill would be a new order). The position book is written in
the same store operation as the record whose fills it applied, so a crash leaves either both or
neither.

Implementations: `MemoryIntentStore` here (the replay's: nothing survives the process),
`shared.adapters.local.intent_store.SqliteIntentStore` (a WAL database under `--state-dir`) and
`shared.adapters.azure.table_intent_store.TableIntentStore` (Azure Table storage, ETag
concurrency). Their calls are async because Table storage is; SQLite's are local and brief.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shared.portfolio import PositionBook

from .orders import OPEN, OrderState
from .records import OrderRecord


class StaleRecord(Exception):
    """Another writer changed the record (or the book) since this one read it: its version is
    not the stored one. With one executor holding the lease this means a second writer exists."""


class IntentStore(Protocol):
    async def get(self, intent_id: str) -> OrderRecord | None:
        """The record of an intent, or None if it was never stored."""
        ...

    async def create(self, record: OrderRecord) -> bool:
        """Store a new record; False (and nothing written) when the intent id is already stored."""
        ...

    async def save(self, record: OrderRecord, book: PositionBook | None = None) -> None:
        """Write a changed record, and with it the book, in one atomic operation. Raises
        StaleRecord when either was changed by someone else since it was read."""
        ...

    async def save_book(self, book: PositionBook) -> None:
        """Write the book alone (after reconciliation set a balance to the venue's)."""
        ...

    async def open_records(self) -> list[OrderRecord]:
        """Records sent (or maybe sent) and not final, plus any left INITIALIZED: what start-up
        reconciles against the venue."""
        ...

    async def load_book(self) -> dict[str, Any] | None:
        """The book as last saved (`book_state`), or None before the first save."""
        ...

    async def close(self) -> None:
        ...


BOOK_TRADES_KEPT = 10  # closed round trips saved with the book (the rest are in the reports)


def book_state(book: PositionBook) -> dict[str, Any]:
    """The book as a store keeps it: everything but the seen-fill window, which the records'
    applied fills replace (a fill is in the book exactly when it is in its record), and only the
    latest `BOOK_TRADES_KEPT` closed round trips, so the book written with every fill stays small."""
    return book.snapshot(seen=False, trades=BOOK_TRADES_KEPT)


async def restore_book(store: IntentStore, default: Callable[[], PositionBook]) -> PositionBook:
    """The book as the store last saved it (or `default()` before the first save), its seen-fill
    window rebuilt from the open orders' applied fills: the only fills that can still arrive."""
    snap = await store.load_book()
    if snap is None:
        return default()
    snap = dict(snap)
    snap["seen_fills"] = [f"{r.client_order_id}:{f.trade_id}" for r in await store.open_records() for f in r.fills]
    return PositionBook.restore(snap)


def is_open(state: OrderState) -> bool:
    return state in OPEN or state is OrderState.INITIALIZED


class MemoryIntentStore:
    """Records in a dict, in this process only: the replay's store, and the tests'.

    It keeps each record object as saved (no copy), because the replay's executor saves every
    intent a few times and a copy would cost more than the rest of its path; `serialize=True`
    keeps JSON instead, so a test's "restart" sees exactly what was saved and nothing later.
    It keeps every record: a long-running service uses a durable store, which keeps them on disk.
    """

    def __init__(self, *, serialize: bool = False) -> None:
        self.serialize = serialize
        self._records: dict[str, OrderRecord | str] = {}
        self._versions: dict[str, int] = {}
        self._book: dict[str, Any] | None = None
        self._book_version = 0
        self.saves = 0

    def _load(self, intent_id: str) -> OrderRecord | None:
        stored = self._records.get(intent_id)
        if stored is None:
            return None
        if isinstance(stored, str):
            return OrderRecord.from_json(stored, etag=str(self._versions[intent_id]))
        return stored

    async def get(self, intent_id: str) -> OrderRecord | None:
        return self._load(intent_id)

    async def create(self, record: OrderRecord) -> bool:
        if record.intent_id in self._records:
            return False
        self._versions[record.intent_id] = 1
        record.etag = "1"
        self._records[record.intent_id] = record.to_json() if self.serialize else record
        self.saves += 1
        return True

    async def save(self, record: OrderRecord, book: PositionBook | None = None) -> None:
        version = self._versions.get(record.intent_id)
        if version is None or (self.serialize and record.etag != str(version)):
            raise StaleRecord(f"intent {record.intent_id} changed since it was read")
        self._versions[record.intent_id] = version + 1
        record.etag = str(version + 1)
        self._records[record.intent_id] = record.to_json() if self.serialize else record
        if book is not None and self.serialize:
            self._book = book_state(book)
            self._book_version += 1
        self.saves += 1

    async def save_book(self, book: PositionBook) -> None:
        if self.serialize:
            self._book = book_state(book)
            self._book_version += 1

    async def open_records(self) -> list[OrderRecord]:
        out = []
        for intent_id in self._records:
            rec = self._load(intent_id)
            if rec is not None and is_open(rec.state):
                out.append(rec)
        return out

    async def load_book(self) -> dict[str, Any] | None:
        return self._book

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._records)
