"""The contract every intent store keeps (SQLite here, Table storage on Azurite), as one helper
the store tests run against each implementation."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from shared.events import Side
from shared.events.trading import Fill
from shared.execution import OrderState, StaleRecord, client_order_id, restore_book
from shared.execution.records import OrderRecord
from shared.execution.store import IntentStore
from shared.execution.venue import OrderRequest, to_decimal
from shared.portfolio import PositionBook
from tests.execution_support import SYMBOL, make_intent


def record(t: int = 1) -> OrderRecord:
    intent = make_intent(Side.BUY, quote=5_000.0, t=1_700_000_000_000 + t)
    coid = client_order_id(intent.event_id)
    req = OrderRequest(symbol=SYMBOL, side=Side.BUY, order_type=intent.order_type, client_order_id=coid,
                       quote_quantity=to_decimal(5000.0))
    rec = OrderRecord(intent.event_id, coid, SYMBOL, intent, req)
    rec.move(OrderState.SUBMITTED, "stored before sending", t)
    rec.sent_at = t
    return rec


async def check_contract(make_store: Callable[[], Any]) -> None:
    """`make_store()` opens the same store anew (a restart)."""
    opened: list[IntentStore] = []

    def open_store() -> IntentStore:
        opened.append(make_store())
        return opened[-1]

    try:
        await _contract(open_store)
    finally:
        for s in opened:
            await s.close()


async def _contract(open_store: Callable[[], IntentStore]) -> None:
    store = open_store()
    rec = record()
    assert await store.get(rec.intent_id) is None
    assert await store.create(rec) is True
    assert await store.create(record()) is False  # the idempotency key: once only
    got = await store.get(rec.intent_id)
    assert got is not None and got.to_json() == rec.to_json() and got.etag == rec.etag
    assert [r.intent_id for r in await store.open_records()] == [rec.intent_id]
    assert await store.load_book() is None

    # A fill and the book it changed are saved together.
    book = PositionBook(cash=10_000.0)
    rec.move(OrderState.ACCEPTED, "submit response: NEW", 2)
    await store.save(rec)
    rec.move(OrderState.FILLED, "venue update: FILLED", 3)
    rec.fills.append(Fill(price=7000.0, quantity=0.7, commission=4.9, commission_asset="USDT", trade_id=11))
    rec.executed_qty = Decimal("0.7")
    from shared.events import ExecutionReport, OrderStatus
    book.apply(ExecutionReport.create(intent=rec.intent, status=OrderStatus.FILLED, venue="paper", order_id=1,
                                      base_asset="BTC", quote_asset="USDT", fills=tuple(rec.fills), event_time=3))
    await store.save(rec, book)
    assert await store.open_records() == []

    # A writer holding an older version is refused (ETag / version compare-and-set).
    stale = await open_store().get(rec.intent_id)
    assert stale is not None
    await store.save(rec)
    with pytest.raises(StaleRecord):
        await open_store().save(stale)

    again = open_store()  # restart
    back = await again.get(rec.intent_id)
    assert back is not None and back.state is OrderState.FILLED and back.fills == rec.fills
    assert [t.to_state for t in back.transitions] == [OrderState.SUBMITTED, OrderState.ACCEPTED, OrderState.FILLED]
    restored = await restore_book(again, lambda: PositionBook(cash=1.0))
    assert restored.qty(SYMBOL) == pytest.approx(0.7) and restored.cash == pytest.approx(book.cash)
    restored.set_balance("USDT", 42.0)
    await again.save_book(restored)
    assert (await open_store().load_book())["cash"] == 42.0  # type: ignore[index]
