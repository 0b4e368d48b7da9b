"""The in-process market bar: the hot-path form of a kline once it has been validated.

Wire events (`shared.events.Kline`) are validated pydantic models; a replay of millions of bars
cannot afford a model per bar, so readers validate at the boundary and hand these plain slotted
objects to the handlers. `Bar.from_kline` and `Bar.to_kline` convert between the two forms.
"""

from __future__ import annotations

from shared.events import Kline, Trade

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


class Tick:
    """One public trade on the hot path (paper fills on trades); time is Unix milliseconds UTC.

    The slotted twin of the wire `shared.events.Trade`, for the same reason `Bar` exists: a replay
    of millions of trades cannot afford a pydantic model per trade.
    """

    __slots__ = ("is_buyer_maker", "price", "qty", "symbol", "time", "trade_id")

    def __init__(self, symbol: str, trade_id: int, price: float, qty: float, time: int,
                 is_buyer_maker: bool) -> None:
        self.symbol = symbol
        self.trade_id = trade_id
        self.price = price
        self.qty = qty
        self.time = time
        # Binance's `m`: the buyer was the resting order, so the aggressor sold.
        self.is_buyer_maker = is_buyer_maker

    def __repr__(self) -> str:
        side = "sell" if self.is_buyer_maker else "buy"
        return (f"Tick({self.symbol} id={self.trade_id} t={self.time} p={self.price} q={self.qty} "
                f"taker={side})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tick) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_trade(cls, t: Trade) -> Tick:
        return cls(t.symbol, t.trade_id, t.price, t.quantity, t.trade_time, t.is_buyer_maker)

    def to_trade(self) -> Trade:
        return Trade.create(symbol=self.symbol, trade_id=self.trade_id, price=self.price,
                            quantity=self.qty, trade_time=self.time, is_buyer_maker=self.is_buyer_maker)
