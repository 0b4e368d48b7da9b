"""Valid events for tests, one factory per kind, built the way the pipeline builds them.

Shared by the test modules (instead of each keeping its own copy); `one_of_each()` holds a sample
of every wire event type, so a test over all of them notices a new type that has no sample.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.events import (
    BookTicker,
    BookTickerPack,
    DecisionStatus,
    ExecutionReport,
    Fill,
    Kline,
    OrderIntent,
    OrderStatus,
    ReconciliationDifference,
    RiskDecision,
    Side,
    Signal,
    Trade,
    TradePack,
    TradingStateChanged,
)

T0 = 1_577_836_800_000  # 2020-01-01T00:00:00Z


def kline(open_time: int = T0, close: float = 7200.5, *, symbol: str = "BTCUSDT") -> Kline:
    return Kline.create(symbol=symbol, interval="1m", open_time=open_time, close_time=open_time + 59_999,
                        open=7195.24, high=max(7260.0, close), low=min(7190.1, close), close=close, volume=12.5)


def signal(bar: Kline | None = None, side: Side = Side.BUY) -> Signal:
    """The signal a strategy emits on `bar`'s close."""
    k = bar if bar is not None else kline()
    return Signal.create(symbol=k.symbol, strategy="sma_cross", side=side, price=k.close, bar_open_time=k.open_time,
                         bar_close_time=k.close_time, market_event_id=k.event_id, correlation_id=k.correlation_id)


def intent(sig: Signal | None = None, *, quote: float = 1000.0) -> OrderIntent:
    """A MARKET BUY of `quote` for `sig` (a BUY signal), validated."""
    s = sig if sig is not None else signal()
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                       event_time=s.event_time, symbol=s.symbol, strategy=s.strategy, side=s.side,
                       quote_quantity=quote, reference_price=s.price, signal_id=s.event_id)


def fill(price: float = 7201.0, quantity: float = 0.1386) -> Fill:
    return Fill(price=price, quantity=quantity, commission=0.998, commission_asset="USDT", trade_id=7)


def decision(order: OrderIntent | None = None) -> RiskDecision:
    i = order if order is not None else intent()
    return RiskDecision.create(layer=1, subject_id=i.signal_id, symbol=i.symbol, status=DecisionStatus.REJECTED,
                               reasons=("POSITION_OPEN",), detail="x", correlation_id=i.correlation_id, event_time=5)


def report(order: OrderIntent | None = None, status: OrderStatus = OrderStatus.FILLED) -> ExecutionReport:
    i = order if order is not None else intent()
    fills = (fill(),) if status is OrderStatus.FILLED else ()
    return ExecutionReport.create(intent=i, status=status, venue="paper", order_id=1, base_asset="BTC",
                                  quote_asset="USDT", fills=fills, event_time=i.event_time + 1)


def trade() -> Trade:
    return Trade.create(symbol="TRXUSDT", trade_id=348656870, price=0.2301, quantity=100.0,
                        trade_time=1_741_046_401_271, is_buyer_maker=True)


def book_ticker() -> BookTicker:
    return BookTicker.create(symbol="BTCUSDT", update_id=400900217, bid_price=7200.1, bid_quantity=1.5,
                             ask_price=7200.2, ask_quantity=0.7, event_time=T0)


def trade_pack() -> TradePack:
    t = trade()
    return TradePack.of([t, t.model_copy(update={"trade_id": t.trade_id + 1, "price": 0.2302})])


def book_ticker_pack() -> BookTickerPack:
    b = book_ticker()
    return BookTickerPack.of([b, b.model_copy(update={"update_id": b.update_id + 3, "bid_price": 7200.0})])


def state_changed() -> TradingStateChanged:
    return TradingStateChanged.create(previous="ACTIVE", state="HALTED", who="ops:alice", why="drill", until=None,
                                      version=2, event_time=T0)


def difference() -> ReconciliationDifference:
    return ReconciliationDifference.create(subject="balance", key="BTC", ours="0.5", venue="0.4",
                                           resolution="book set to the venue's balance", event_time=T0,
                                           symbol="BTCUSDT")


def one_of_each() -> list[BaseModel]:
    """A sample of every wire event type and of Fill (the one nested model)."""
    i = intent()
    return [kline(), trade(), book_ticker(), trade_pack(), book_ticker_pack(), signal(), i, decision(i), report(i),
            report(i, OrderStatus.NEW), fill(), state_changed(), difference()]
