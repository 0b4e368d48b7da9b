"""The executor's core: the single writer of orders for an account.

It stores every intent before sending (so a crash between store and send is recovered by
querying the order by its client id, never by a blind resend), makes the last-look risk check
against the exact account and the orders in flight, and derives the client order id from the
intent id, so a redelivered intent can never become a second order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.events import ExecutionReport, OrderIntent, OrderStatus, RiskDecision
from shared.portfolio import AccountSnapshot
from shared.risk import RiskEngine

_DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class Broker(Protocol):
    def submit(self, intent: OrderIntent, now: int) -> ExecutionReport | None:
        """Send an order; the venue's immediate report, or None when it reports only on fills."""
        ...


class Executor:
    def __init__(self, broker: Broker, risk: RiskEngine, account: Callable[[], AccountSnapshot]) -> None:
        self.broker = broker
        self.risk = risk
        self.account = account
        self.intents: dict[str, OrderIntent] = {}      # stored before sending, by intent id
        self.in_flight: dict[str, OrderIntent] = {}    # client order id -> intent, until done
        self.decisions: list[RiskDecision] = []

    def in_flight_for(self, symbol: str) -> int:
        return sum(1 for i in self.in_flight.values() if i.symbol == symbol)

    def on_intent(self, intent: OrderIntent, now: int) -> tuple[RiskDecision | None, ExecutionReport | None]:
        """Last look, store, send. Returns the last look's decision (None for a plain approval,
        see RiskEngine) and the venue's immediate report, if any. A redelivered intent is
        ignored (returns (None, None))."""
        if intent.event_id in self.intents:
            return None, None
        decision, approved = self.risk.last_look(intent, self.account(), self.in_flight.values(), now)
        if decision is not None:
            self.decisions.append(decision)
        self.intents[intent.event_id] = approved or intent
        if approved is None:
            return decision, None
        self.in_flight[approved.client_order_id] = approved
        report = self.broker.submit(approved, now)
        if report is not None:
            self.on_report(report)
        return decision, report

    def on_exchange_error(self, http_status: int | None, code: int | None, now: int,
                          retry_after_s: float | None = None, detail: str = "") -> bool:
        """Report a venue error to risk; a ban (418/429/-1003) halts new orders until it lapses."""
        return self.risk.report_exchange_error(http_status, code, now, retry_after_s, detail)

    def on_report(self, report: ExecutionReport) -> None:
        """Track order state from the venue's reports; finished orders leave the in-flight set."""
        if report.status in _DONE:
            self.in_flight.pop(report.client_order_id, None)
