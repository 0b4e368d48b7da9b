"""The Azure Table intent store on Azurite: the store contract, ETag concurrency, one transaction
for a record and its book, and the executor restarting on it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.adapters.azure.table_intent_store import TableIntentStore
from shared.events import Side
from shared.execution import Executor, PaperVenue, StaleRecord, restore_book
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine
from tests.execution_support import SYMBOL, T0, FakeTime, make_intent
from tests.intent_store_contract import check_contract, record

pytestmark = pytest.mark.azurite
CONN = "UseDevelopmentStorage=true"


def table_name() -> str:
    return "intents" + uuid.uuid4().hex[:16]


def test_table_store_keeps_the_contract() -> None:
    name = table_name()

    async def run() -> None:
        first = TableIntentStore.from_connection_string(CONN, name)
        await first.ensure_table()
        await first.close()
        await check_contract(lambda: TableIntentStore.from_connection_string(CONN, name))

    asyncio.run(run())


def test_a_stale_book_fails_the_whole_transaction() -> None:
    name = table_name()

    async def run() -> None:
        a = TableIntentStore.from_connection_string(CONN, name)
        b = TableIntentStore.from_connection_string(CONN, name)
        try:
            await a.ensure_table()
            rec = record()
            await a.create(rec)
            await a.save_book(PositionBook(cash=10.0))
            await b.load_book()
            await b.save_book(PositionBook(cash=20.0))  # another writer moved the book on
            from shared.execution import OrderState
            rec.move(OrderState.ACCEPTED, "ack", 2)
            with pytest.raises(StaleRecord):
                await a.save(rec, PositionBook(cash=30.0))
            fresh = await b.get(rec.intent_id)
            assert fresh is not None and fresh.state is OrderState.SUBMITTED  # the record did not move either
            assert (await b.load_book())["cash"] == 20.0  # type: ignore[index]
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())


def test_the_executor_restarts_on_table_storage_knowing_its_position() -> None:
    name = table_name()
    venue, time = PaperVenue(commission=0.001, balances={"USDT": 10_000.0}), FakeTime()

    async def boot() -> tuple[Executor, TableIntentStore]:
        store = TableIntentStore.from_connection_string(CONN, name)
        await store.ensure_table()
        book = await restore_book(store, lambda: PositionBook(cash=10_000.0))
        ex = Executor(venue, RiskEngine(RiskConfig.replay()), book, store, clock=time.clock, sleep=time.sleep)
        await ex.reconcile(time.now, symbols=(SYMBOL,))
        return ex, store

    async def run() -> None:
        ex, store = await boot()
        intent = make_intent(Side.BUY, quote=5_000.0)
        await ex.on_intent(intent, T0)
        for update in venue.on_price(SYMBOL, 7000.0, T0 + 1):
            await ex.on_order_update(update, T0 + 1)
        held = ex.book.qty(SYMBOL)
        await store.close()
        ex2, store2 = await boot()
        try:
            assert held > 0 and ex2.book.qty(SYMBOL) == held and not ex2.differences
            assert (await ex2.on_intent(intent, T0)).duplicate and venue.submitted == 1
        finally:
            await store2.close()

    asyncio.run(run())
