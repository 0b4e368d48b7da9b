"""A replay stays a replay downstream, and risk reads its own writes.

`marketflow up` and `replay-hub` mark replayed market data with an application property `replay`
naming the source. The stages derived from it (signals, then orders) must carry the mark, or the
`risk` Function checks a 2020 signal against today's clock and rejects it STALE_SIGNAL (what `up`
did before: 14 signals, 0 orders). And risk, after approving an order, waits for its fill to be in
the account snapshot before deciding the next signal, so a signal on the bar an order filled on
sees the fill (as the in-process replay does).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eventhub_host import host_batch, trigger

from functions import runtime
from shared import topology
from shared.adapters import Delivery, InMemoryDeadLetterSink, InMemoryPublisher
from shared.adapters.account import AccountStore, CachedAccount, StoredPositions
from shared.adapters.documents import InMemoryDocumentStore
from shared.adapters.processing import is_replay, replay_of
from shared.adapters.tracing import TRACEPARENT, without_trace
from shared.data import read_klines
from shared.events import ExecutionReport, Fill, OrderIntent, OrderStatus, Side, Signal
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine
from shared.samples import btcusdt_1m_paths

ENV = {"MARKETFLOW_ACCOUNT_CASH": "10000", "MARKETFLOW_STRATEGY": "sma_cross",
       "MARKETFLOW_STRATEGY_PARAMS": "fast=3 slow=8"}


@pytest.fixture
def publisher() -> Iterator[InMemoryPublisher]:
    pub = InMemoryPublisher()
    runtime.reset()
    runtime.configure(publisher=pub, dead_letters=InMemoryDeadLetterSink(), documents=InMemoryDocumentStore(),
                      environ=ENV)
    yield pub
    runtime.reset()


@pytest.mark.parametrize(("value", "replayed"), [
    ("up", "up"), ("hub:src", "hub:src"), ("true", "true"), (b"capture", "capture"), (True, "True"),
    ("false", None), ("0", None), ("", None), (None, None), (False, None)])
def test_the_replay_property_names_its_source(value: object, replayed: str | None) -> None:
    delivery = Delivery(body=b"{}", properties={} if value is None else {"replay": value})
    assert replay_of(delivery) == replayed
    assert is_replay(delivery) is (replayed is not None)


@pytest.mark.parametrize("replay", [True, False])
def test_signals_of_replayed_klines_carry_the_mark_to_risk(publisher: InMemoryPublisher, replay: bool) -> None:
    klines = [b.to_kline() for b in read_klines(btcusdt_1m_paths()).bars[:60]]
    trigger("signals")(host_batch(klines, replay=replay))
    signals = publisher.events(topology.SIGNALS.name)
    assert len(signals) == 14
    props = publisher.properties[topology.SIGNALS.name]
    assert [without_trace(p) for p in props] == [{"replay": "true"} if replay else {}] * len(signals)
    assert all(TRACEPARENT in p for p in props)  # and each the trace of the kline it came from


def test_a_replayed_signal_is_approved_in_event_time_and_its_order_stays_marked(
        publisher: InMemoryPublisher) -> None:
    klines = [b.to_kline() for b in read_klines(btcusdt_1m_paths()).bars[:60]]
    trigger("positions_marks")(host_batch(klines[:1]))  # the account risk reads
    trigger("signals")(host_batch(klines))
    first = publisher.events(topology.SIGNALS.name)[0]
    assert isinstance(first, Signal) and first.side is Side.BUY
    # As the signals Function published it: its own properties plus the replay mark it carried.
    trigger("risk")(host_batch([first], properties=None))
    orders = publisher.events(topology.ORDERS.name)
    assert [o.signal_id for o in orders if isinstance(o, OrderIntent)] == [first.event_id]
    assert [without_trace(p) for p in publisher.properties[topology.ORDERS.name]] == [{"replay": "true"}]
    # Unmarked, the same 2020 signal is checked against the wall clock: too old to trade.
    runtime.reset()
    runtime.configure(publisher=publisher, dead_letters=InMemoryDeadLetterSink(),
                      documents=InMemoryDocumentStore(), environ=ENV)
    trigger("positions_marks")(host_batch(klines[:1]))
    trigger("risk")(host_batch([first], replay=False))
    assert len(publisher.events(topology.ORDERS.name)) == 1


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def _intent_and_fill(price: float = 7200.0) -> tuple[OrderIntent, ExecutionReport]:
    """An order the risk engine approved, and the paper fill the executor would report for it."""
    bar = read_klines(btcusdt_1m_paths()).bars[0]
    signal = Signal.create(symbol="BTCUSDT", strategy="sma_cross", side=Side.BUY, price=price,
                           bar_open_time=bar.open_time, bar_close_time=bar.close_time,
                           market_event_id="m" * 16, correlation_id="c" * 16)
    book = PositionBook(cash=10_000.0)
    _, intent = RiskEngine(RiskConfig.replay()).check_signal(signal, book.snapshot_account())
    assert intent is not None
    report = ExecutionReport.create(intent=intent, status=OrderStatus.FILLED, venue="paper", order_id=1,
                                    base_asset="BTC", quote_asset="USDT",
                                    fills=(Fill(price=price, quantity=0.1, commission=0.0,
                                                commission_asset="USDT", trade_id=1),),
                                    event_time=bar.close_time + 1)
    return intent, report


def test_risk_waits_for_the_fill_of_the_order_it_approved() -> None:
    docs = InMemoryDocumentStore()
    positions = StoredPositions(AccountStore(docs), opening_cash=10_000.0)
    intent, report = _intent_and_fill()
    klines = [b.to_kline() for b in read_klines(btcusdt_1m_paths()).bars[:1]]
    positions.begin()
    positions.on_kline(klines[0])
    positions.commit()
    clock = Clock()
    sleeps: list[float] = []

    def sleep(s: float) -> None:  # the positions Function books the fill while risk waits
        sleeps.append(s)
        clock.ms += 20
        if len(sleeps) == 3:
            positions.begin()
            positions.on_report(report)
            positions.commit()

    account = CachedAccount(AccountStore(docs), refresh_ms=60_000, clock=clock, wait_ms=5_000, sleep=sleep)
    assert "BTCUSDT" not in account().positions
    account.expect(intent)
    seen = account()  # within refresh_ms of the last read, yet it re-reads until the fill is there
    assert len(sleeps) == 3 and seen.positions["BTCUSDT"][0] == pytest.approx(0.1)
    assert account.unbooked == 0 and account.waited_ms == 60
    account()  # nothing expected any more: the cached snapshot, no wait
    assert len(sleeps) == 3


def test_an_order_never_filled_ends_the_wait_after_wait_ms(caplog: pytest.LogCaptureFixture) -> None:
    docs = InMemoryDocumentStore()
    positions = StoredPositions(AccountStore(docs), opening_cash=10_000.0)
    positions.begin()
    positions.on_kline(read_klines(btcusdt_1m_paths()).bars[0].to_kline())
    positions.commit()
    clock = Clock()

    def sleep(s: float) -> None:
        clock.ms += round(s * 1000)

    account = CachedAccount(AccountStore(docs), clock=clock, wait_ms=1_000, sleep=sleep)
    intent, _ = _intent_and_fill()
    account.expect(intent)  # e.g. refused by the executor's last look: no report, no fill
    assert account().cash == 10_000.0
    assert account.unbooked == 1 and 1_000 <= account.waited_ms <= 1_020
    assert "no fill in the account snapshot" in caplog.text
