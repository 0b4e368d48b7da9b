"""Moving-average crossover strategies."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.events import Side
from shared.indicators import EMAPair, SMAPair
from shared.market import Bar

from .base import Strategy, StrategyParams


class CrossParams(StrategyParams):
    fast: int = Field(default=10, ge=1, description="period of the fast moving average, in bars")
    slow: int = Field(default=20, ge=2, description="period of the slow moving average, in bars")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> CrossParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class SmaCross(Strategy):
    """BUY when SMA(fast) crosses strictly above SMA(slow) on a bar's close; SELL on the cross below."""

    NAME = "sma_cross"
    Params = CrossParams
    STATE = ("averages", "prev_fast", "prev_slow")

    def __init__(self, params: CrossParams) -> None:
        super().__init__(params)
        self.averages: SMAPair | EMAPair = SMAPair(params.fast, params.slow)  # both in one update
        self.prev_fast: float | None = None
        self.prev_slow: float | None = None

    def on_bar(self, bar: Bar) -> Side | None:
        pair = self.averages.update(bar.close)
        if pair is None:
            return None
        f, s = pair
        pf = self.prev_fast
        ps = self.prev_slow
        self.prev_fast = f
        self.prev_slow = s
        if ps is None or pf is None or s is None:
            return None
        if pf < ps and f > s:
            return Side.BUY
        if pf > ps and f < s:
            return Side.SELL
        return None


class EmaCross(SmaCross):
    """The same crossover rule on EMAs (TA-Lib seeding: the SMA of the first n closes)."""

    NAME = "ema_cross"

    def __init__(self, params: CrossParams) -> None:
        super().__init__(params)
        self.averages = EMAPair(params.fast, params.slow)
