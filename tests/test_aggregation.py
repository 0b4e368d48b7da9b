"""Trades to bars: the candles built from the bundled TRXUSDT trade capture."""

from __future__ import annotations

import pytest

from shared.aggregation import BarAggregator
from shared.data import read_trades
from shared.samples import trx_trades_path


def test_bars_from_real_trades_match_a_direct_computation() -> None:
    ticks = read_trades(trx_trades_path())
    agg = BarAggregator(ticks[0].symbol, "1m")
    bars = [b for t in ticks if (b := agg.on_trade(t.price, t.qty, t.time)) is not None]
    # Reference: group the same trades by minute with plain dict logic.
    groups: dict[int, list] = {}
    for t in ticks:
        groups.setdefault(t.time - t.time % 60_000, []).append(t)
    starts = sorted(groups)[:-1]  # the last minute is still open when the data ends
    assert [b.open_time for b in bars] == starts
    for bar in bars:
        g = groups[bar.open_time]
        assert (bar.open, bar.close) == (g[0].price, g[-1].price)
        assert bar.high == max(t.price for t in g) and bar.low == min(t.price for t in g)
        assert bar.volume == pytest.approx(sum(t.qty for t in g), rel=1e-12)
        assert bar.close_time == bar.open_time + 59_999


def test_out_of_order_trades_are_refused() -> None:
    agg = BarAggregator("BTCUSDT", "1m")
    agg.on_trade(100.0, 1.0, 120_000)
    with pytest.raises(ValueError, match="older"):
        agg.on_trade(100.0, 1.0, 60_000)
    with pytest.raises(ValueError, match="unknown interval"):
        BarAggregator("BTCUSDT", "7m")
