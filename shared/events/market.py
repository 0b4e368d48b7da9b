"""Market events as the ingestor publishes them to the `market-data` hub."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from .base import Event
from .ids import deterministic_id, id_of


class Kline(Event):
    """One candle. Only closed candles drive strategies; `is_closed` is kept for stream updates."""

    type: Literal["kline"] = "kline"
    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9]+$")
    interval: str = Field(min_length=2, max_length=4)
    open_time: int = Field(ge=0)
    close_time: int = Field(ge=0)
    open: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(gt=0, allow_inf_nan=False)
    close: float = Field(gt=0, allow_inf_nan=False)
    volume: float = Field(ge=0, allow_inf_nan=False)
    quote_volume: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    trades: int = Field(default=0, ge=0)
    is_closed: bool = True

    @model_validator(mode="after")
    def _ohlc_consistent(self) -> Self:
        if self.high < max(self.open, self.close, self.low):
            raise ValueError("high is below open, close or low")
        if self.low > min(self.open, self.close):
            raise ValueError("low is above open or close")
        if self.close_time < self.open_time:
            raise ValueError("close_time is before open_time")
        return self

    @staticmethod
    def make_id(symbol: str, interval: str, open_time: int) -> str:
        return id_of(f"kline\x1f{symbol}\x1f{interval}\x1f{open_time}")

    @classmethod
    def create(cls, *, symbol: str, interval: str, open_time: int, close_time: int, open: float,
               high: float, low: float, close: float, volume: float, quote_volume: float = 0.0,
               trades: int = 0, is_closed: bool = True) -> Kline:
        """Build a kline with its deterministic id; the id is also the correlation root."""
        eid = cls.make_id(symbol, interval, open_time)
        return cls(event_id=eid, correlation_id=eid, event_time=close_time, symbol=symbol,
                   interval=interval, open_time=open_time, close_time=close_time, open=open,
                   high=high, low=low, close=close, volume=volume, quote_volume=quote_volume,
                   trades=trades, is_closed=is_closed)


class Trade(Event):
    """One public trade (Binance `@trade` stream or trade archive)."""

    type: Literal["trade"] = "trade"
    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9]+$")
    trade_id: int = Field(ge=0)
    price: float = Field(gt=0, allow_inf_nan=False)
    quantity: float = Field(gt=0, allow_inf_nan=False)
    trade_time: int = Field(ge=0)
    # Binance's `m`: the buyer is the maker, i.e. the aggressor sold.
    is_buyer_maker: bool

    @classmethod
    def create(cls, *, symbol: str, trade_id: int, price: float, quantity: float, trade_time: int,
               is_buyer_maker: bool) -> Trade:
        eid = deterministic_id("trade", symbol, trade_id)
        return cls(event_id=eid, correlation_id=eid, event_time=trade_time, symbol=symbol,
                   trade_id=trade_id, price=price, quantity=quantity, trade_time=trade_time,
                   is_buyer_maker=is_buyer_maker)


class BookTicker(Event):
    """Best bid and ask of one symbol (Binance `@bookTicker` stream).

    Binance's spot book ticker carries no event time, so `event_time` is when the ingestor
    received it; the id comes from the symbol and the order book update id, so a redelivered
    update keeps its id.
    """

    type: Literal["book_ticker"] = "book_ticker"
    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9]+$")
    update_id: int = Field(ge=0)
    bid_price: float = Field(ge=0, allow_inf_nan=False)
    bid_quantity: float = Field(ge=0, allow_inf_nan=False)
    ask_price: float = Field(ge=0, allow_inf_nan=False)
    ask_quantity: float = Field(ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _not_crossed(self) -> Self:
        # An empty side is quoted as 0; two quoted sides must not cross.
        if self.bid_price > 0 and self.ask_price > 0 and self.bid_price > self.ask_price:
            raise ValueError("bid_price is above ask_price")
        return self

    @classmethod
    def create(cls, *, symbol: str, update_id: int, bid_price: float, bid_quantity: float, ask_price: float,
               ask_quantity: float, event_time: int) -> BookTicker:
        eid = deterministic_id("book_ticker", symbol, update_id)
        return cls(event_id=eid, correlation_id=eid, event_time=event_time, symbol=symbol, update_id=update_id,
                   bid_price=bid_price, bid_quantity=bid_quantity, ask_price=ask_price, ask_quantity=ask_quantity)
