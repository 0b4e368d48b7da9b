"""Versioned documents in one SQLite file: the laptop or single-node form of the shared stores.

Each document is a row (key, etag, json); a conditional write is one `UPDATE ... WHERE etag = ?`
(or an `INSERT` that fails on an existing key) inside SQLite's own locking, so processes sharing
the file cannot overwrite each other's changes. A connection per call keeps it usable from any
thread and any process.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from shared.adapters.documents import DocumentConflict, Versioned, dumps

_SCHEMA = "CREATE TABLE IF NOT EXISTS documents (key TEXT PRIMARY KEY, etag TEXT NOT NULL, body BLOB NOT NULL)"


class SqliteDocumentStore:
    """`DocumentStore` in a SQLite file (created with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def get(self, key: str) -> Versioned | None:
        with self._connect() as db:
            row = db.execute("SELECT body, etag FROM documents WHERE key = ?", (key,)).fetchone()
        return None if row is None else Versioned(json.loads(row[0]), row[1])

    def etag(self, key: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT etag FROM documents WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, data: dict[str, Any], etag: str | None) -> str:
        body = dumps(data)
        new = uuid.uuid4().hex
        with self._connect() as db:
            if etag is None:
                try:
                    db.execute("INSERT INTO documents (key, etag, body) VALUES (?, ?, ?)", (key, new, body))
                except sqlite3.IntegrityError:
                    raise DocumentConflict(f"document {key!r} already exists") from None
            else:
                cur = db.execute("UPDATE documents SET etag = ?, body = ? WHERE key = ? AND etag = ?",
                                 (new, body, key, etag))
                if cur.rowcount != 1:
                    raise DocumentConflict(f"document {key!r} changed since it was read")
        return new
