"""The in-process market bar: the hot-path form of a kline once it has been validated.

Wire events (`shared.events.Kline`) are validated pydantic models; a replay of millions of bars
cannot afford a model per bar, so readers validate at the boundary and hand these plain slotted
objects to the handlers. `Bar.from_kline` and `Bar.to_kline` convert between the two forms.
"""

from __future__ import annotations

from shared.events import Kline

INTERVAL_MS: dict[str, int] = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000,
}


class Bar:
    """A closed candle. Times are Unix milliseconds UTC."""

    __slots__ = ("close", "close_time", "high", "interval", "low", "open", "open_time", "symbol",
                 "volume")

    def __init__(self, symbol: str, interval: str, open_time: int, close_time: int, open: float,
                 high: float, low: float, close: float, volume: float) -> None:
        self.symbol = symbol
        self.interval = interval
        self.open_time = open_time
        self.close_time = close_time
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    def __repr__(self) -> str:
        return (f"Bar({self.symbol} {self.interval} t={self.open_time} o={self.open} h={self.high} "
                f"l={self.low} c={self.close} v={self.volume})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bar) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    @property
    def event_id(self) -> str:
        """The id the wire kline of this bar has: signals correlate to it."""
        return Kline.make_id(self.symbol, self.interval, self.open_time)

    @classmethod
    def from_kline(cls, k: Kline) -> Bar:
        return cls(k.symbol, k.interval, k.open_time, k.close_time, k.open, k.high, k.low, k.close,
                   k.volume)

    def to_kline(self) -> Kline:
        return Kline.create(symbol=self.symbol, interval=self.interval, open_time=self.open_time,
                            close_time=self.close_time, open=self.open, high=self.high, low=self.low,
                            close=self.close, volume=self.volume)
