"""The intent store in a SQLite database (WAL) under a state directory: the executor's on one node.

One file, `intents.sqlite3`, two tables: `orders` (one row per intent: its record as JSON, its
state, a version) and `book` (one row: the position book as JSON, a version). A record and the
book it changed are written in one transaction, so a crash leaves both or neither; each write
checks the version it read (compare-and-set), so a second writer fails loudly (StaleRecord)
instead of overwriting. A new record is one statement (`INSERT ... ON CONFLICT DO NOTHING`: the
primary key is the idempotency check), one implicit transaction, one commit. `orders` is a rowid
table: its rows (a record is about a kilobyte of JSON) are too large for a WITHOUT ROWID table,
whose B-tree holds the whole row in the key's pages (an insert took about 1.7x as long; a store
created before 2026-12-04 keeps that layout, and both work).

Durability (`synchronous`, the service's `MARKETFLOW_INTENT_SYNC`; see sqlite.org's PRAGMA
synchronous and WAL pages): `FULL`, the default, fsyncs the WAL on every commit, so a record
stored before its order was sent survives an OS crash or power loss of the node too. `NORMAL`
does not fsync on commit: the commit is in the WAL file (the OS page cache) when the call
returns, so it survives the process dying (SIGKILL, OOM, the pod's container killed), but a
kernel crash or power loss may roll back the latest commits (the database stays consistent).
Losing the record of an order already sent would let a redelivered intent be sent again.

Checkpoints (copying the WAL back into the database, an fsync of each) are off the write path:
the writing connection has `wal_autocheckpoint=0`, and a daemon thread with its own connection
runs a PASSIVE checkpoint every `checkpoint_s` (it never blocks the writer; SQLite's C calls
release the GIL). With SQLite's default (a checkpoint inside the commit that crosses 1,000 WAL
pages), every ~100th intent paid one before its send: the store's p99.

Records stay in the file after they are final (the idempotency key must outlive the order), so
the file grows with the orders placed, on disk, not in memory: memory holds SQLite's page cache
(`cache_kib`, 2 MiB by default) and nothing per record.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from shared.execution.orders import FINAL
from shared.execution.records import OrderRecord
from shared.execution.store import StaleRecord, book_state
from shared.portfolio import PositionBook

FILENAME = "intents.sqlite3"
SYNC_MODES = ("FULL", "NORMAL")
DEFAULT_SYNC = "FULL"
CHECKPOINT_S = 1.0
_PRAGMA_SYNC = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
log = logging.getLogger("marketflow.intent_store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    intent_id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    state TEXT NOT NULL,
    open INTEGER NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (open) WHERE open = 1;
CREATE TABLE IF NOT EXISTS book (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


class SqliteIntentStore:
    """`IntentStore` on SQLite. The async calls run the (brief, local) statements directly."""

    def __init__(self, state_dir: str | Path, *, synchronous: str = DEFAULT_SYNC, cache_kib: int = 2048,
                 checkpoint_s: float = CHECKPOINT_S) -> None:
        mode = synchronous.strip().upper()
        if mode not in SYNC_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNC_MODES)}, got {synchronous!r}")
        directory = Path(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        # Autocommit mode: a lone statement is its own transaction; multi-statement writes BEGIN IMMEDIATE.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={mode}")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it, off the write path
        self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT version FROM book WHERE id = 1").fetchone()
        self._book_version = int(row[0]) if row else 0
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=_checkpoint_every, name="intent-store-checkpoint", daemon=True,
                                              args=(self.path, mode, checkpoint_s, self._stop))
        self._checkpointer.start()
        weakref.finalize(self, self._stop.set)  # a store dropped unclosed stops its thread too

    @property
    def synchronous(self) -> str:
        """The mode the writing connection runs, read back from SQLite (`PRAGMA synchronous`)."""
        return _PRAGMA_SYNC.get(int(self._db.execute("PRAGMA synchronous").fetchone()[0]), "?")

    def checkpoint(self) -> tuple[int, int, int]:
        """A PASSIVE checkpoint now, on the writing connection: (busy, WAL frames, frames copied back)."""
        busy, frames, copied = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(copied)

    async def get(self, intent_id: str) -> OrderRecord | None:
        row = self._db.execute("SELECT body, version FROM orders WHERE intent_id = ?", (intent_id,)).fetchone()
        return OrderRecord.from_json(row[0], etag=str(row[1])) if row else None

    async def create(self, record: OrderRecord) -> bool:
        cur = self._db.execute(
            "INSERT INTO orders (intent_id, client_order_id, symbol, state, open, version, body) "
            "VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING",
            (record.intent_id, record.client_order_id, record.symbol, record.state.value,
             int(record.state not in FINAL), record.to_json()))
        if cur.rowcount != 1:
            return False
        record.etag = "1"
        return True

    async def save(self, record: OrderRecord, book: PositionBook | None = None) -> None:
        version = int(record.etag or 0)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute(
                "UPDATE orders SET state = ?, open = ?, version = ?, body = ? WHERE intent_id = ? AND version = ?",
                (record.state.value, int(record.state not in FINAL), version + 1, record.to_json(),
                 record.intent_id, version))
            if cur.rowcount != 1:
                raise StaleRecord(f"intent {record.intent_id} changed since it was read (version {version})")
            if book is not None:
                self._write_book(book)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        record.etag = str(version + 1)
        if book is not None:
            self._book_version += 1

    async def save_book(self, book: PositionBook) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._write_book(book)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._book_version += 1

    def _write_book(self, book: PositionBook) -> None:
        body = json.dumps(book_state(book), separators=(",", ":"))
        v = self._book_version
        if v == 0:
            cur = self._db.execute("INSERT INTO book (id, version, body) VALUES (1, 1, ?) ON CONFLICT DO NOTHING",
                                   (body,))
        else:
            cur = self._db.execute("UPDATE book SET version = ?, body = ? WHERE id = 1 AND version = ?",
                                   (v + 1, body, v))
        if cur.rowcount != 1:
            raise StaleRecord(f"the book changed since version {v} was read")

    async def open_records(self) -> list[OrderRecord]:
        rows = self._db.execute("SELECT body, version FROM orders WHERE open = 1").fetchall()
        return [OrderRecord.from_json(body, etag=str(v)) for body, v in rows]

    async def load_book(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body, version FROM book WHERE id = 1").fetchone()
        if row is None:
            return None
        self._book_version = int(row[1])
        data: dict[str, Any] = json.loads(row[0])
        return data

    async def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(5)
        self._db.close()  # the last connection to close checkpoints the WAL into the database

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])


def _checkpoint_every(path: Path, mode: str, interval_s: float, stop: threading.Event) -> None:
    """The checkpoint thread: its own connection, a PASSIVE checkpoint every `interval_s` until
    `stop` (a checkpoint syncs the WAL and then the database in both FULL and NORMAL)."""
    db: sqlite3.Connection | None = None
    try:
        while not stop.wait(interval_s):
            try:
                if db is None:
                    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                    db.execute(f"PRAGMA synchronous={mode}")
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as err:  # e.g. the directory went away under a test: try again later
                log.debug("intent store checkpoint failed: %s", err)
    finally:
        if db is not None:
            db.close()
