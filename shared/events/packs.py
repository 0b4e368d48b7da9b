"""Trades and book tickers of one symbol packed into one hub event, as the ingestor publishes them.

A busy symbol trades, and its book ticker moves, thousands of times a second. One hub event per
trade would cost an Event Hubs throughput unit per 1,000 of them (a unit takes 1,000 events or
1 MB a second of ingress, whichever comes first) and, in the azure-eventhub SDK, a pure-Python
AMQP encoding of each (the ingest bench measures both). So the ingestor publishes the trades of
a symbol that one write carries as a `TradePack` (the book tickers as a `BookTickerPack`): one
event, its rows in order, at most `MAX_ROWS` of them, each row the fields that the one-per-trade
event would carry minus what is derived (the symbol is the pack's, the id comes from symbol and
trade id). `unpack` gives back exactly the `Trade` and `BookTicker` events, ids included; klines
stay one event per bar (they drive the strategies, at one per symbol per interval).

A pack's id is derived from its symbol and its first and last row's sequence number, so the same
rows make the same id. Rows are in strictly increasing order of trade id (update id): the
ingestor writes each trade once and in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Literal, NamedTuple, Self, TypeVar

from pydantic import Field, model_validator

from .base import SCHEMA_VERSION, Event, trusted
from .ids import deterministic_id
from .market import BookTicker, Trade

MAX_ROWS = 1_000  # a trade row is about 45 bytes of JSON: a pack stays under the 64 KB an ingress event is billed by

_Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Quote = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_Seq = Annotated[int, Field(ge=0)]
_Symbol = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Z0-9]+$")]


class TradeRow(NamedTuple):
    """One trade in a pack (JSON: an array in this order)."""

    trade_id: _Seq
    price: _Price
    quantity: _Price
    trade_time: _Seq
    is_buyer_maker: bool


class BookTickerRow(NamedTuple):
    """One book ticker update in a pack (JSON: an array in this order); `event_time` is when the
    ingestor received it, as in `BookTicker`."""

    update_id: _Seq
    bid_price: _Quote
    bid_quantity: _Quote
    ask_price: _Quote
    ask_quantity: _Quote
    event_time: _Seq


def _increasing(seqs: Iterable[int], what: str) -> None:
    last = -1
    for i, seq in enumerate(seqs):
        if seq <= last:
            raise ValueError(f"row {i}: {what} {seq} does not follow {last} (rows are in increasing order)")
        last = seq


P = TypeVar("P", bound=Event)


def _built(cls: type[P], field: str, seq_name: str, symbol: str,
           rows: tuple[TradeRow, ...] | tuple[BookTickerRow, ...], event_time: int) -> P:
    """A pack from rows of validated events, checked for the order consumers validate (so the
    producer never publishes a pack a consumer would dead-letter); its id from the symbol and the
    first and last row's sequence number."""
    type_name = cls.model_fields["type"].default
    _increasing((r[0] for r in rows), seq_name)
    eid = deterministic_id(type_name, symbol, rows[0][0], rows[-1][0])
    return trusted(cls, {"schema_version": SCHEMA_VERSION, "event_id": eid, "correlation_id": eid,
                         "event_time": event_time, "type": type_name, "symbol": symbol, field: rows})


class TradePack(Event):
    """Consecutive trades of one symbol, oldest first."""

    type: Literal["trade_pack"] = "trade_pack"
    symbol: _Symbol
    trades: tuple[TradeRow, ...] = Field(min_length=1, max_length=MAX_ROWS)

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        _increasing((r.trade_id for r in self.trades), "trade id")
        return self

    @classmethod
    def of(cls, trades: Sequence[Trade]) -> TradePack:
        """The pack of already validated trades of one symbol, in order (the ingestor's)."""
        rows = tuple(TradeRow(t.trade_id, t.price, t.quantity, t.trade_time, t.is_buyer_maker) for t in trades)
        return _built(cls, "trades", "trade id", trades[0].symbol, rows, trades[-1].trade_time)

    def unpack(self) -> list[Trade]:
        return [Trade.create(symbol=self.symbol, trade_id=r.trade_id, price=r.price, quantity=r.quantity,
                             trade_time=r.trade_time, is_buyer_maker=r.is_buyer_maker) for r in self.trades]


class BookTickerPack(Event):
    """Consecutive book ticker updates of one symbol, oldest first."""

    type: Literal["book_ticker_pack"] = "book_ticker_pack"
    symbol: _Symbol
    updates: tuple[BookTickerRow, ...] = Field(min_length=1, max_length=MAX_ROWS)

    @model_validator(mode="after")
    def _in_order_and_not_crossed(self) -> Self:
        _increasing((r.update_id for r in self.updates), "update id")
        for i, r in enumerate(self.updates):
            if r.bid_price > 0 and r.ask_price > 0 and r.bid_price > r.ask_price:
                raise ValueError(f"row {i}: bid_price is above ask_price")
        return self

    @classmethod
    def of(cls, updates: Sequence[BookTicker]) -> BookTickerPack:
        """The pack of already validated book tickers of one symbol, in order (the ingestor's)."""
        rows = tuple(BookTickerRow(u.update_id, u.bid_price, u.bid_quantity, u.ask_price, u.ask_quantity,
                                   u.event_time) for u in updates)
        return _built(cls, "updates", "update id", updates[0].symbol, rows, updates[-1].event_time)

    def unpack(self) -> list[BookTicker]:
        return [BookTicker.create(symbol=self.symbol, update_id=r.update_id, bid_price=r.bid_price,
                                  bid_quantity=r.bid_quantity, ask_price=r.ask_price, ask_quantity=r.ask_quantity,
                                  event_time=r.event_time) for r in self.updates]


def pack(events: Sequence[Event], max_rows: int = MAX_ROWS) -> list[Event]:
    """What the ingestor publishes for one write: each kline as it is, then per symbol its trades
    in `TradePack`s and its book tickers in `BookTickerPack`s of at most `max_rows`, in order
    (order is kept within each stream; no consumer orders one stream against another)."""
    out: list[Event] = []
    runs: dict[tuple[type[Event], str], list[Event]] = {}
    for event in events:
        if isinstance(event, Trade | BookTicker):
            runs.setdefault((type(event), event.symbol), []).append(event)
        else:
            out.append(event)
    for (kind, _), run in runs.items():
        maker = TradePack.of if kind is Trade else BookTickerPack.of
        for i in range(0, len(run), max_rows):
            out.append(maker(run[i:i + max_rows]))  # type: ignore[arg-type]
    return out


def unpack(events: Iterable[Event]) -> list[Event]:
    """Events with every pack replaced by the trades or book tickers it holds, in order."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, TradePack | BookTickerPack):
            out.extend(event.unpack())
        else:
            out.append(event)
    return out
