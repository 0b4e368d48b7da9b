"""Strategies: registry, parameter validation, strict crossover semantics, snapshot/restore."""

from __future__ import annotations

import pytest

from shared.events import Side
from shared.market import Bar
from shared.pipeline.signals import SignalHandler
from shared.strategies import STRATEGIES, StrategyConfigError, create, describe, parse_params


def bars_from_closes(closes: list[float], symbol: str = "BTCUSDT") -> list[Bar]:
    return [Bar(symbol, "1m", i * 60_000, i * 60_000 + 59_999, c, c, c, c, 1.0) for i, c in enumerate(closes)]


def run(strategy: str, closes: list[float], **params: object) -> list[tuple[int, Side]]:
    strat = create(strategy, params)
    out = []
    for i, bar in enumerate(bars_from_closes(closes)):
        side = strat.on_bar(bar)
        if side is not None:
            out.append((i, side))
    return out


def test_registry_lists_the_four_strategies_with_documented_params() -> None:
    assert set(STRATEGIES) == {"sma_cross", "ema_cross", "rsi_reversion", "bollinger_breakout"}
    for name, info in describe().items():
        assert info["doc"], name
        for key, meta in info["params"].items():
            assert meta["description"], (name, key)


def test_bad_configuration_is_named() -> None:
    with pytest.raises(StrategyConfigError, match="unknown strategy"):
        create("nope")
    with pytest.raises(StrategyConfigError, match="fast"):
        create("sma_cross", {"fast": "x"})
    with pytest.raises(StrategyConfigError, match="shorter"):
        create("sma_cross", {"fast": 20, "slow": 10})
    with pytest.raises(StrategyConfigError, match="fats"):
        create("sma_cross", {"fats": 3})
    with pytest.raises(StrategyConfigError, match="key=value"):
        parse_params(["fast10"])
    assert parse_params(["fast=3", "slow = 5"]) == {"fast": "3", "slow": "5"}


def test_sma_cross_is_strict_and_decided_on_the_close() -> None:
    # fast=1 (the close itself) vs slow=2: crosses whenever the close moves through the 2-bar mean.
    # Bar 4 has fast == slow, so bar 5's move below is not a cross: equality never counts.
    assert run("sma_cross", [10, 11, 9, 12, 12, 8], fast=1, slow=2) == [(2, Side.SELL), (3, Side.BUY)]
    assert run("sma_cross", [10, 10, 10, 11], fast=1, slow=2) == []


def test_ema_cross_waits_for_both_averages() -> None:
    closes = [10.0, 9.0, 8.0, 7.0, 6.0, 8.0, 10.0, 12.0, 14.0, 9.0, 6.0, 3.0]
    signals = run("ema_cross", closes, fast=2, slow=4)
    assert [s for _, s in signals] == [Side.BUY, Side.SELL]
    assert signals[0][0] >= 4  # the slow EMA is seeded at index 3, so index 4 is the first comparison


def test_rsi_reversion_buys_oversold_sells_overbought() -> None:
    down = [100.0 - i for i in range(10)]
    up = [down[-1] + 2 * i for i in range(1, 15)]
    signals = run("rsi_reversion", [100.0, 101.0, 100.5, 101.5, 101.0, *down, *up], period=3)
    sides = [s for _, s in signals]
    assert Side.BUY in sides and Side.SELL in sides
    assert sides.index(Side.BUY) < sides.index(Side.SELL)


def test_bollinger_breakout_buys_above_upper_sells_below_middle() -> None:
    closes = [100.0, 101.0] * 10 + [110.0, 111.0, 104.0, 99.0]
    signals = run("bollinger_breakout", closes, period=20, nbdev=2)
    assert signals == [(20, Side.BUY), (23, Side.SELL)]


def test_signal_handler_ignores_redelivered_bars_and_keeps_symbols_apart() -> None:
    handler = SignalHandler("sma_cross", {"fast": 1, "slow": 2})
    btc = bars_from_closes([10, 11, 9, 12, 13])
    eth = bars_from_closes([5, 6, 4, 7, 8], symbol="ETHUSDT")
    out = []
    for b, e in zip(btc, eth, strict=True):
        for bar in (b, e, b):  # b is delivered twice
            s = handler.on_bar(bar)
            if s:
                out.append((s.symbol, s.side.value, s.bar_open_time))
    assert handler.duplicates == 5
    assert out == [("BTCUSDT", "SELL", 120_000), ("ETHUSDT", "SELL", 120_000), ("BTCUSDT", "BUY", 180_000),
                   ("ETHUSDT", "BUY", 180_000)]


def test_signal_handler_snapshot_restore_mid_stream() -> None:
    bars = bars_from_closes([float(100 + (i * 7919) % 13 - 6) for i in range(300)])
    full = SignalHandler("sma_cross", {"fast": 3, "slow": 8})
    expected = [full.on_bar(b) for b in bars]
    first = SignalHandler("sma_cross", {"fast": 3, "slow": 8})
    for b in bars[:150]:
        first.on_bar(b)
    second = SignalHandler("sma_cross", {"fast": 3, "slow": 8})
    second.restore(first.snapshot())
    assert [second.on_bar(b) for b in bars[150:]] == expected[150:]
    assert any(expected[150:])
