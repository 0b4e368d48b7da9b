"""What a long-running executor keeps in memory stays in windows of documented sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.adapters.local.intent_store import SqliteIntentStore
from shared.events import Side
from shared.execution import Executor, PaperVenue, paper, run_sync
from shared.portfolio import PositionBook, book
from shared.risk import RiskConfig, RiskEngine, states
from tests.execution_support import SYMBOL, T0, make_intent


def test_windows_hold_their_sizes_over_many_orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(book, "SEEN_FILLS_WINDOW", 50)
    monkeypatch.setattr(paper, "ORDER_HISTORY", 40)
    venue = PaperVenue(commission=0.001, balances={"USDT": 1e9})
    ledger = PositionBook(cash=1e9, trades_window=30)
    store = SqliteIntentStore(tmp_path, synchronous="NORMAL")
    ex = Executor(venue, RiskEngine(RiskConfig.replay()), ledger, store, decisions_window=20)
    for i in range(600):
        t = T0 + i * 60_000
        side = Side.BUY if i % 2 == 0 else Side.SELL
        intent = make_intent(side, quote=1_000.0 if side is Side.BUY else None,
                             quantity=ledger.qty(SYMBOL) if side is Side.SELL else None, t=t)
        run_sync(ex.on_intent(intent, t))
        for update in venue.on_price(SYMBOL, 7000.0 + i % 5, t + 1):
            run_sync(ex.on_order_update(update, t + 1))
        run_sync(ex.on_intent(make_intent(Side.SELL, quantity=5.0, t=t + 30_000), t + 30_000))  # rejected
    assert venue.submitted == 600 and store.count() == 1200  # every record on disk, none in memory
    assert len(ex.decisions) == 20
    assert not ex.open and not ex.in_flight
    assert 30 <= len(ledger.closed_trades) <= 60
    assert len(ledger.snapshot()["seen_fills"]) <= 100
    assert len(venue._done) <= 40
    assert ex.risk.states.events.maxlen == states.STATE_EVENTS_WINDOW
