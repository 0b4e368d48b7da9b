"""The SQLite intent store: the store contract, WAL, and a failed transaction that writes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from shared.adapters.local.intent_store import FILENAME, SqliteIntentStore
from shared.execution import OrderState
from shared.portfolio import PositionBook
from tests.intent_store_contract import check_contract, record


def test_sqlite_store_keeps_the_contract(tmp_path: Path) -> None:
    asyncio.run(check_contract(lambda: SqliteIntentStore(tmp_path)))
    mode = sqlite3.connect(tmp_path / FILENAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_record_and_its_book_are_written_together_or_not_at_all(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteIntentStore(tmp_path)
        rec = record()
        await store.create(rec)
        book = PositionBook(cash=10_000.0)
        await store.save_book(book)
        other = SqliteIntentStore(tmp_path)
        await other.load_book()
        await other.save_book(PositionBook(cash=1.0))  # someone else moved the book on
        rec.move(OrderState.ACCEPTED, "ack", 2)
        with pytest.raises(Exception, match="book changed"):
            await store.save(rec, book)
        fresh = await SqliteIntentStore(tmp_path).get(rec.intent_id)
        assert fresh is not None and fresh.state is OrderState.SUBMITTED  # the record was rolled back too

    asyncio.run(run())
