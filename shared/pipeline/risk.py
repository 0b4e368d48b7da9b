"""The `risk` handler (layer 1): signals in, order intents or rejections out.

Called by the `risk` Function and by replay. The account it checks against comes from a
provider: the in-process position book in replay, the positions Function's snapshot in Azure
(`shared.adapters.account.CachedAccount`). A provider with no account raises
AccountUnavailable, and the signal is rejected (`ACCOUNT_UNAVAILABLE`, logged as an error):
layer 1 never approves against an account it made up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.events import DecisionStatus, OrderIntent, RiskDecision, Signal
from shared.portfolio import AccountSnapshot
from shared.risk import Reason, RiskConfig, RiskEngine, StateStore

log = logging.getLogger(__name__)


class AccountUnavailable(RuntimeError):
    """No account snapshot exists (positions never wrote one): nothing may be approved."""


def no_account() -> AccountSnapshot:
    """The provider of a handler built without one: refuses every signal."""
    raise AccountUnavailable("no account source configured (the positions function's snapshot store)")


class RiskHandler:
    """Layer 1 around a RiskEngine (whose `counters()` count the decisions).

    Where no market feed reaches the engine (the `risk` Function consumes only the signals hub),
    the engine takes each signal's bar close as the symbol's latest price; the replay hands that
    close to `RiskEngine.on_market` before each decision.
    """

    def __init__(self, engine: RiskEngine, account: Callable[[], AccountSnapshot],
                 on_approved: Callable[[OrderIntent], None] | None = None) -> None:
        self.engine = engine
        self.account = account
        # Told of each approved order (the Function's account reader waits for its fill: see
        # shared.adapters.account.CachedAccount.expect); replay's in-process book needs nothing.
        self.on_approved = on_approved
        self.unavailable = 0  # signals refused for want of an account

    def on_signal(self, signal: Signal, now: int | None = None) -> tuple[RiskDecision | None, OrderIntent | None]:
        """(REJECTED decision, None), (None, intent) or (REDUCED decision, intent): see RiskEngine."""
        try:
            account = self.account()
        except AccountUnavailable as exc:
            self.unavailable += 1
            log.error("risk refuses signal %s on %s: %s", signal.event_id, signal.symbol, exc)
            return RiskDecision.create(layer=1, subject_id=signal.event_id, symbol=signal.symbol,
                                       status=DecisionStatus.REJECTED, reasons=(Reason.ACCOUNT_UNAVAILABLE.value,),
                                       detail=str(exc), correlation_id=signal.correlation_id,
                                       event_time=signal.event_time if now is None else now), None
        decision, intent = self.engine.check_signal(signal, account, now)
        if intent is not None and self.on_approved is not None:
            self.on_approved(intent)
        return decision, intent

    @classmethod
    def from_settings(cls, account: Callable[[], AccountSnapshot] | None = None,
                      store: StateStore | None = None) -> RiskHandler:
        """Build from MARKETFLOW_RISK_* settings (exchangeInfo file included; the trading state in
        `store`, else the state file). Without an account provider every signal is refused."""
        return cls(RiskEngine(RiskConfig(), store=store), account or no_account)
