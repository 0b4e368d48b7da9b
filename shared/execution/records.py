"""One intent as the intent store keeps it: the approved intent, the exact request, its state.

The record is the idempotency key (its id is the intent id) and the order's memory across
restarts: its state and every transition with its cause, the venue's order id, the executed
quantities, and the fills already applied to the position book (written in the same store
operation as the book, so a fill is in the book exactly when it is in its record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.events import OrderIntent, decode_as
from shared.events.trading import Fill

from .orders import OrderState, Transition, transition
from .venue import OrderRequest

MAX_TRANSITIONS = 64  # per record: a long run of partial fills keeps its first and latest changes


@dataclass(slots=True)
class OrderRecord:
    intent_id: str
    client_order_id: str
    symbol: str
    intent: OrderIntent                  # as approved by the last look (or as received, if rejected)
    request: OrderRequest | None         # exactly what is sent; None when the last look rejected it
    state: OrderState = OrderState.INITIALIZED
    transitions: list[Transition] = field(default_factory=list)
    venue_order_id: int | None = None
    executed_qty: Decimal = Decimal(0)   # the sum of `fills`: what the book holds of this order
    cumulative_quote_qty: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)  # applied to the book, in venue order
    reject_reason: str = ""
    sent_at: int | None = None           # wall ms when it was (about to be) sent
    etag: str | None = None              # the store's concurrency token of the version read
    # The frozen intent's and request's JSON, made once per object: a record is written a few
    # times per order (before the send, then with each change) and they never change.
    _encoded: tuple[OrderIntent, str, OrderRequest | None, Any] | None = field(
        default=None, init=False, repr=False, compare=False)

    def move(self, to: OrderState, cause: str, time: int) -> bool:
        """Take a transition (raises InvalidTransition when the table has none); False, and nothing
        recorded, when the order is already in `to` and that is no further change."""
        if to is self.state and to is not OrderState.PARTIALLY_FILLED:
            return False
        t = transition(self.state, to, cause, time)
        self.state = to
        trs = self.transitions
        trs.append(t)
        if len(trs) > MAX_TRANSITIONS:
            del trs[1]
        return True

    @property
    def applied_trade_ids(self) -> set[int]:
        return {f.trade_id for f in self.fills}

    # -- (de)serialization: plain JSON, exact decimals as strings ----------------------------
    def _frozen_parts(self) -> tuple[str, Any]:
        done = self._encoded
        if done is None or done[0] is not self.intent or done[2] is not self.request:
            request = self.request.model_dump(mode="json") if self.request is not None else None
            done = self._encoded = (self.intent, self.intent.model_dump_json(), self.request, request)
        return done[1], done[3]

    def to_json(self) -> str:
        """The record as one JSON object; the intent is embedded as its own JSON object, serialized
        once per record (pydantic's encoder), not as an escaped string."""
        intent, request = self._frozen_parts()
        rest = json.dumps({
            "intent_id": self.intent_id, "client_order_id": self.client_order_id, "symbol": self.symbol,
            "request": request,
            "state": self.state.value,
            "transitions": [[t.from_state.value, t.to_state.value, t.cause, t.time] for t in self.transitions],
            "venue_order_id": self.venue_order_id, "executed_qty": str(self.executed_qty),
            "cumulative_quote_qty": str(self.cumulative_quote_qty),
            "fills": [f.model_dump() for f in self.fills], "reject_reason": self.reject_reason,
            "sent_at": self.sent_at,
        }, separators=(",", ":"))
        return '{"intent":' + intent + "," + rest[1:]

    @classmethod
    def from_json(cls, text: str, etag: str | None = None) -> OrderRecord:
        d: dict[str, Any] = json.loads(text)
        return cls(
            intent_id=d["intent_id"], client_order_id=d["client_order_id"], symbol=d["symbol"],
            intent=_intent(d["intent"]),
            request=OrderRequest.model_validate(d["request"]) if d["request"] is not None else None,
            state=OrderState(d["state"]),
            transitions=[Transition(OrderState(a), OrderState(b), c, int(t)) for a, b, c, t in d["transitions"]],
            venue_order_id=d["venue_order_id"], executed_qty=Decimal(d["executed_qty"]),
            cumulative_quote_qty=Decimal(d["cumulative_quote_qty"]),
            fills=[Fill.model_validate(f) for f in d["fills"]], reject_reason=d["reject_reason"],
            sent_at=d["sent_at"], etag=etag)


def _intent(value: Any) -> OrderIntent:
    """The stored intent: a JSON object, or (records written before 2026-12-04) its wire JSON as a string."""
    if isinstance(value, str):
        return decode_as(value.encode("utf-8"), OrderIntent)
    return OrderIntent.model_validate(value)
