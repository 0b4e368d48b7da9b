"""The SQLite intent store: the store contract, WAL, a failed transaction that writes nothing, the
durability mode it runs, a record that outlives its process killed, and checkpoints off the write path."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
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


@pytest.mark.parametrize("mode", ["FULL", "NORMAL", "normal"])
def test_the_store_runs_the_synchronous_mode_it_is_given(tmp_path: Path, mode: str) -> None:
    store = SqliteIntentStore(tmp_path, synchronous=mode)
    try:
        assert store.synchronous == mode.upper()  # PRAGMA synchronous on the connection that writes
    finally:
        asyncio.run(store.close())
    with pytest.raises(ValueError, match="synchronous"):
        SqliteIntentStore(tmp_path, synchronous="OFF")


ROOT = Path(__file__).resolve().parent.parent
_CHILD = """
import asyncio, sys, time
from shared.adapters.local.intent_store import SqliteIntentStore
from tests.intent_store_contract import record

async def main():
    store = SqliteIntentStore(sys.argv[1], synchronous=sys.argv[2], checkpoint_s=3600)
    rec = record(7)
    assert await store.create(rec)
    print(rec.intent_id, flush=True)
    time.sleep(60)

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["FULL", "NORMAL"])
def test_an_intent_stored_survives_its_process_killed(tmp_path: Path, mode: str) -> None:
    """The pod dying: the record is in the WAL (never checkpointed here), and the WAL outlives SIGKILL."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), mode], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None
        intent_id = child.stdout.readline().strip()
        assert intent_id, "the child did not store its intent"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    wal = tmp_path / (FILENAME + "-wal")
    assert wal.stat().st_size > 0  # what follows is read back from the log the killed process left

    async def reopen() -> None:
        store = SqliteIntentStore(tmp_path, synchronous=mode)
        try:
            found = await store.get(intent_id)
            assert found is not None and found.state is OrderState.SUBMITTED and found.etag == "1"
            assert not await store.create(record(7))  # still the idempotency key: not stored twice
        finally:
            await store.close()

    asyncio.run(reopen())


def _written(store: SqliteIntentStore, n: int) -> None:
    async def run() -> None:
        for i in range(n):
            assert await store.create(record(100 + i))

    asyncio.run(run())


def test_checkpoints_run_on_their_thread_not_in_the_commit(tmp_path: Path) -> None:
    """The WAL reaches the database file only through the checkpoint thread (autocheckpoint is off)."""
    idle = SqliteIntentStore(tmp_path / "idle", checkpoint_s=3600)
    busy = SqliteIntentStore(tmp_path / "busy", checkpoint_s=0.05)
    try:
        before = {p: (p.path.stat().st_size) for p in (idle, busy)}
        _written(idle, 300)
        _written(busy, 300)  # ~1,000 WAL frames: SQLite's default would have checkpointed in a commit
        deadline = time.monotonic() + 10
        while busy.path.stat().st_size == before[busy] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert busy.path.stat().st_size > before[busy]
        assert idle.path.stat().st_size == before[idle]
    finally:
        asyncio.run(idle.close())
        asyncio.run(busy.close())


def test_a_record_reads_back_as_written_and_records_of_the_earlier_layout_still_load() -> None:
    """The intent is embedded as a JSON object; a body written before 2026-12-04 holds it as its
    wire JSON in a string, and reads back as the same record."""
    import json

    from shared.events import encode
    from shared.execution.records import OrderRecord

    rec = record(9)
    body = rec.to_json()
    doc = json.loads(body)
    assert isinstance(doc["intent"], dict) and doc["intent"]["event_id"] == rec.intent_id
    again = OrderRecord.from_json(body)
    assert again == rec and again.to_json() == body and again.intent == rec.intent
    assert OrderRecord.from_json(body, etag="3").etag == "3"
    earlier = json.dumps({**doc, "intent": encode(rec.intent).decode("utf-8")}, separators=(",", ":"))
    old = OrderRecord.from_json(earlier)
    assert old == rec and old.to_json() == body
