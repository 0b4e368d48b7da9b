"""The `risk` handler (layer 1): signals in, order intents or rejections out.

Called by the `risk` Function and by replay. The account it checks against comes from a
provider: the in-process position book in replay, the positions Function's snapshot in Azure.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.events import OrderIntent, RiskDecision, Signal
from shared.portfolio import AccountSnapshot, PositionBook
from shared.risk import RiskConfig, RiskEngine


class RiskHandler:
    """Layer 1 around a RiskEngine (whose `counters()` count the decisions).

    Where no market feed reaches the engine (the `risk` Function consumes only the signals hub),
    the engine takes each signal's bar close as the symbol's latest price; the replay hands that
    close to `RiskEngine.on_market` before each decision.
    """

    def __init__(self, engine: RiskEngine, account: Callable[[], AccountSnapshot]) -> None:
        self.engine = engine
        self.account = account

    def on_signal(self, signal: Signal, now: int | None = None) -> tuple[RiskDecision | None, OrderIntent | None]:
        """(REJECTED decision, None), (None, intent) or (REDUCED decision, intent): see RiskEngine."""
        return self.engine.check_signal(signal, self.account(), now)

    @classmethod
    def from_settings(cls, account: Callable[[], AccountSnapshot] | None = None) -> RiskHandler:
        """Build from MARKETFLOW_RISK_* settings (state file and exchangeInfo file included).
        Without an account provider, a flat account with MARKETFLOW_ACCOUNT_CASH (default 10000)
        stands in until the positions snapshot is wired."""
        if account is None:
            import os

            book = PositionBook(cash=float(os.environ.get("MARKETFLOW_ACCOUNT_CASH", "10000")))
            account = book.snapshot_account
        return cls(RiskEngine(RiskConfig()), account)
