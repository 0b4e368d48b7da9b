"""The risk engine: one implementation serving both layers.

Layer 1 (the `risk` Function) turns a signal into an intent using what it can know cheaply: the
signal and the latest account snapshot. Layer 2 (the executor's last look) re-checks the intent
against the exact current account and the orders still in flight, just before sending; only it
can guarantee account-wide limits, because the executor is the single writer of orders.
"""

from __future__ import annotations

from shared.events import DecisionStatus, OrderIntent, RiskDecision, Side, Signal
from shared.portfolio import AccountSnapshot

from .config import RiskConfig
from .reasons import Reason


class RiskEngine:
    def __init__(self, config: RiskConfig | None = None) -> None:
        self.config = config or RiskConfig()
        self._seen_signals: set[str] = set()

    # -- layer 1 -----------------------------------------------------------------------------
    def check_signal(self, signal: Signal, account: AccountSnapshot) -> tuple[RiskDecision, OrderIntent | None]:
        """Decide on a signal; an approved one becomes a sized OrderIntent."""
        if signal.event_id in self._seen_signals:
            return self._reject(1, signal, Reason.DUPLICATE, "signal already decided"), None
        self._seen_signals.add(signal.event_id)
        held = account.qty(signal.symbol)
        if signal.side is Side.BUY:
            if held > 0:
                return self._reject(1, signal, Reason.POSITION_OPEN, f"already long {held}"), None
            budget = min(account.equity * self.config.order_equity_share, account.cash)
            if budget <= 0:
                return self._reject(1, signal, Reason.INSUFFICIENT_BALANCE, f"cash {account.cash}"), None
            intent = _intent(signal, quote_quantity=budget)
        else:
            if held <= 0:
                return self._reject(1, signal, Reason.NO_POSITION, "nothing to sell"), None
            intent = _intent(signal, quantity=held)
        decision = RiskDecision.create(
            layer=1, subject_id=signal.event_id, symbol=signal.symbol, status=DecisionStatus.APPROVED,
            reasons=(), detail="", correlation_id=signal.correlation_id, event_time=signal.event_time)
        return decision, intent

    # -- layer 2 -----------------------------------------------------------------------------
    def last_look(self, intent: OrderIntent, account: AccountSnapshot, in_flight: int,
                  now: int) -> tuple[RiskDecision, OrderIntent | None]:
        """Authoritative check against the exact account and in-flight orders for the symbol."""
        if in_flight:
            return self._reject(2, intent, Reason.ORDER_IN_FLIGHT, f"{in_flight} working", now), None
        held = account.qty(intent.symbol)
        if intent.side is Side.BUY:
            if held > 0:
                return self._reject(2, intent, Reason.POSITION_OPEN, f"already long {held}", now), None
            if intent.quote_quantity is not None and intent.quote_quantity > account.cash:
                return self._reject(2, intent, Reason.INSUFFICIENT_BALANCE, f"cash {account.cash}", now), None
        elif held <= 0:
            return self._reject(2, intent, Reason.NO_POSITION, "nothing to sell", now), None
        elif intent.quantity is not None and intent.quantity > held:
            intent = intent.model_copy(update={"quantity": held, "reduced": True})
        decision = RiskDecision.create(
            layer=2, subject_id=intent.event_id, symbol=intent.symbol,
            status=DecisionStatus.REDUCED if intent.reduced else DecisionStatus.APPROVED, reasons=(),
            detail="", correlation_id=intent.correlation_id, event_time=now)
        return decision, intent

    @staticmethod
    def _reject(layer: int, subject: Signal | OrderIntent, reason: Reason, detail: str,
                now: int | None = None) -> RiskDecision:
        return RiskDecision.create(
            layer=1 if layer == 1 else 2, subject_id=subject.event_id, symbol=subject.symbol,
            status=DecisionStatus.REJECTED, reasons=(reason.value,), detail=detail,
            correlation_id=subject.correlation_id, event_time=subject.event_time if now is None else now)


def _intent(signal: Signal, *, quantity: float | None = None,
            quote_quantity: float | None = None) -> OrderIntent:
    return OrderIntent(
        event_id=OrderIntent.make_id(signal.event_id), correlation_id=signal.correlation_id,
        event_time=signal.event_time, symbol=signal.symbol, strategy=signal.strategy, side=signal.side,
        quantity=quantity, quote_quantity=quote_quantity, reference_price=signal.price,
        reduce_only=signal.side is Side.SELL, signal_id=signal.event_id)
