"""The `positions` handler: execution reports and marks in, the account risk checks against out.

Called by the `positions` Functions (one on `executions`, one on `market-data` for the marks).
It wraps the shared `PositionBook` and adds what a consumer of at-least-once hubs needs: a
redelivered report changes nothing (the book keys fills by client order id and trade id), and a
mark older than the symbol's last one is ignored, so a redelivered or late kline cannot move
equity backwards. Its whole state is `snapshot()`; `restore` of it gives the same handler.
"""

from __future__ import annotations

from typing import Any

from shared.events import ExecutionReport, Kline
from shared.portfolio import AccountSnapshot, ClosedTrade, PositionBook

from .errors import LateEvent

# Bounds of the persisted state (a long-running service keeps nothing that grows without bound):
# fills remembered for deduplication (far more than a day of hub retention holds for one
# account) and closed round trips kept for inspection.
SEEN_FILLS_KEPT = 20_000
CLOSED_TRADES_KEPT = 500


class PositionsHandler:
    """One account's book, fed by execution reports and closed klines of one interval."""

    def __init__(self, book: PositionBook, interval: str = "1m") -> None:
        self.book = book
        self.interval = interval
        self.last_mark: dict[str, int] = {}  # symbol -> open time of the last kline marked
        self.stale_marks = 0

    def on_report(self, report: ExecutionReport) -> list[ClosedTrade]:
        """Book the report's new fills (none for a redelivery); returns the round trips closed."""
        if not report.fills:
            return []
        return self.book.apply(report)

    def on_kline(self, kline: Kline) -> bool:
        """Mark the book at a closed kline's close; False when skipped (open, other interval, the
        symbol's last mark again). An older kline raises LateEvent."""
        if not kline.is_closed or kline.interval != self.interval:
            return False
        last = self.last_mark.get(kline.symbol)
        if last is not None and kline.open_time <= last:
            self.stale_marks += 1
            if kline.open_time < last:
                raise LateEvent(f"{kline.symbol} mark of {kline.open_time} arrived after the mark of {last}")
            return False
        self.last_mark[kline.symbol] = kline.open_time
        self.book.mark(kline.symbol, kline.close, kline.close_time)
        return True

    def account(self) -> AccountSnapshot:
        return self.book.snapshot_account()

    def snapshot(self) -> dict[str, Any]:
        """The handler's state, JSON-safe and bounded (oldest fills and trades dropped first)."""
        book = self.book.snapshot()
        book["seen_fills"] = book["seen_fills"][-SEEN_FILLS_KEPT:]
        book["closed_trades"] = book["closed_trades"][-CLOSED_TRADES_KEPT:]
        return {"interval": self.interval, "book": book, "last_mark": dict(self.last_mark)}

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> PositionsHandler:
        handler = cls(PositionBook.restore(snap["book"]), str(snap["interval"]))
        handler.last_mark = {str(k): int(v) for k, v in snap["last_mark"].items()}
        return handler


def account_to_json(account: AccountSnapshot) -> dict[str, Any]:
    """The snapshot as risk reads it from the store (positions as [qty, avg_price, mark])."""
    data = account._asdict()
    data["positions"] = {s: list(p) for s, p in account.positions.items()}
    return data


def account_from_json(data: dict[str, Any]) -> AccountSnapshot:
    return AccountSnapshot(
        cash=float(data["cash"]), equity=float(data["equity"]), peak_equity=float(data["peak_equity"]),
        day_start_equity=float(data["day_start_equity"]), realized_pnl=float(data["realized_pnl"]),
        positions={str(s): (float(q), float(a), float(m)) for s, (q, a, m) in data["positions"].items()},
        consecutive_losses=int(data["consecutive_losses"]), time=int(data["time"]))
