"""Mean-reversion and breakout strategies."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.events import Side
from shared.indicators import RSI, BollingerBands
from shared.market import Bar

from .base import Strategy, StrategyParams


class RsiParams(StrategyParams):
    period: int = Field(default=14, ge=2, description="RSI period (Wilder smoothing), in bars")
    oversold: float = Field(default=30.0, gt=0, lt=100, description="BUY when RSI crosses below this")
    overbought: float = Field(default=70.0, gt=0, lt=100, description="SELL when RSI crosses above this")

    @model_validator(mode="after")
    def _ordered(self) -> RsiParams:
        if self.oversold >= self.overbought:
            raise ValueError("oversold must be below overbought")
        return self


class RsiReversion(Strategy):
    """BUY when RSI crosses strictly below `oversold`; SELL when it crosses strictly above `overbought`."""

    NAME = "rsi_reversion"
    Params = RsiParams
    STATE = ("rsi", "prev")

    def __init__(self, params: RsiParams) -> None:
        super().__init__(params)
        self.rsi = RSI(params.period)
        self.prev: float | None = None

    def on_bar(self, bar: Bar) -> Side | None:
        r = self.rsi.update(bar.close)
        prev = self.prev
        self.prev = r
        if prev is None or r is None:
            return None
        p: RsiParams = self.params  # type: ignore[assignment]
        if prev > p.oversold and r < p.oversold:
            return Side.BUY
        if prev < p.overbought and r > p.overbought:
            return Side.SELL
        return None


class BollingerParams(StrategyParams):
    period: int = Field(default=20, ge=2, description="Bollinger period, in bars")
    nbdev: float = Field(default=2.0, gt=0, description="band width in population standard deviations")


class BollingerBreakout(Strategy):
    """BUY when the close crosses strictly above the upper band; SELL when it crosses below the middle."""

    NAME = "bollinger_breakout"
    Params = BollingerParams
    STATE = ("bands", "prev_close", "prev_upper", "prev_middle")

    def __init__(self, params: BollingerParams) -> None:
        super().__init__(params)
        self.bands = BollingerBands(params.period, params.nbdev, params.nbdev)
        self.prev_close: float | None = None
        self.prev_upper: float | None = None
        self.prev_middle: float | None = None

    def on_bar(self, bar: Bar) -> Side | None:
        close = bar.close
        v = self.bands.update(close)
        pc, pu, pm = self.prev_close, self.prev_upper, self.prev_middle
        self.prev_close = close
        if v is None:
            return None
        upper, middle, _ = v
        self.prev_upper, self.prev_middle = upper, middle
        if pc is None or pu is None or pm is None:
            return None
        if pc < pu and close > upper:
            return Side.BUY
        if pc > pm and close < middle:
            return Side.SELL
        return None
