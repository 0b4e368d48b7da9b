"""Replay on trade data: trades build bars, orders fill at the next trade after the signal."""

from __future__ import annotations

import pytest

from shared.data import read_trades
from shared.market import Tick
from shared.pipeline.replay import run_trade_replay
from shared.samples import trx_trades_path


@pytest.fixture(scope="module")
def ticks() -> list[Tick]:
    return list(read_trades(trx_trades_path()))


def test_orders_fill_at_the_first_trade_after_the_signal_bar(ticks: list[Tick]) -> None:
    r = run_trade_replay(ticks, "sma_cross", {"fast": 3, "slow": 8}, interval="1m", cash=1000.0,
                         commission=0.001)
    fills = r.fills
    assert len(r.signals) >= 2 and len(fills) >= 2
    by_signal = {s.event_id: s for s in r.signals}
    by_intent = {i.event_id: i for i in r.intents}
    times = [t.time for t in ticks]
    for report in fills:
        signal = by_signal[by_intent[report.intent_id].signal_id]
        # The next trade strictly after the signal bar closed, and its exact price.
        nxt = next(t for t in ticks if t.time > signal.event_time)
        assert report.event_time == nxt.time
        assert report.fills[0].price == nxt.price
        assert report.event_time in times
    assert len(r.bars) == len(r.equity)
    assert all(b.close_time < r.bars[i + 1].open_time for i, b in enumerate(r.bars[:-1]))


def test_trade_replay_is_deterministic_and_ignores_redelivered_trades(ticks: list[Tick]) -> None:
    a = run_trade_replay(ticks, "sma_cross", {"fast": 3, "slow": 8})
    doubled = [x for t in ticks for x in (t, t)]
    b = run_trade_replay(doubled, "sma_cross", {"fast": 3, "slow": 8})
    assert [r.event_id for r in a.reports] == [r.event_id for r in b.reports]
    assert a.trades == b.trades and a.equity == b.equity
    assert b.ignored == len(ticks)


def test_a_trade_replay_counts_the_trades_it_consumed() -> None:
    """Events in the summary and the events metric count trades, the market events of this path."""
    from shared.data import read_trades
    from shared.pipeline.replay import run_trade_replay
    from shared.samples import trx_trades_path

    ticks = read_trades([trx_trades_path()])
    r = run_trade_replay([*ticks, ticks[3]], "sma_cross")
    assert r.ignored == 1
    assert r.events == len(ticks) + 1 + len(r.signals) + len(r.decisions) + len(r.intents) + len(r.reports)
