"""The `signals` handler: closed bars in, strategy signals out. Called by the Function and by replay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events import Kline, Side, Signal
from shared.market import Bar
from shared.strategies import Strategy, create

from .errors import LateEvent


class SignalHandler:
    """One strategy instance per symbol; each closed bar yields at most one Signal.

    A redelivered bar (the symbol's last open time again) is ignored and counted; an older one
    raises LateEvent (the consumer dead-letters it as LATE), so at-least-once delivery never
    feeds a strategy the same bar twice, nor one out of order.
    """

    def __init__(self, strategy: str, params: Mapping[str, Any] | None = None) -> None:
        self.strategy_name = strategy
        self.params = dict(params or {})
        create(strategy, self.params)  # validate the configuration now, not on the first bar
        self._strategies: dict[str, Strategy] = {}
        self._last_open: dict[str, int] = {}
        self.duplicates = 0

    def _strategy(self, symbol: str) -> Strategy:
        strat = self._strategies.get(symbol)
        if strat is None:
            strat = self._strategies[symbol] = create(self.strategy_name, self.params)
        return strat

    def on_bar(self, bar: Bar) -> Signal | None:
        """Feed one closed bar; returns the signal decided on its close, if any. A redelivered bar
        is counted and ignored; a late one (older than the symbol's last) raises LateEvent."""
        symbol = bar.symbol
        last = self._last_open.get(symbol)
        if last is not None and bar.open_time <= last:
            if bar.open_time < last:
                raise LateEvent(f"{symbol} {bar.interval} bar of {bar.open_time} arrived after the bar of {last}")
            self.duplicates += 1
            return None
        self._last_open[symbol] = bar.open_time
        return self.decide(bar)

    def decide(self, bar: Bar) -> Signal | None:
        """The strategy's decision on a bar its caller has already deduplicated (the replay's
        pipeline does, before the broker and the book see the bar)."""
        symbol = bar.symbol
        strat = self._strategies.get(symbol) or self._strategy(symbol)
        side: Side | None = strat.on_bar(bar)
        if side is None:
            return None
        market_id = bar.event_id
        return Signal.create(symbol=symbol, strategy=self.strategy_name, side=side, price=bar.close,
                             bar_open_time=bar.open_time, bar_close_time=bar.close_time,
                             market_event_id=market_id, correlation_id=market_id)

    def on_kline(self, kline: Kline) -> Signal | None:
        """Wire form: only closed klines reach the strategy (stream updates of an open bar do not)."""
        if not kline.is_closed:
            return None
        return self.on_bar(Bar.from_kline(kline))

    def snapshot(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy_name,
            "params": self.params,
            "last_open": dict(self._last_open),
            "symbols": {s: st.snapshot() for s, st in self._strategies.items()},
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        if snap["strategy"] != self.strategy_name:
            raise ValueError(f"snapshot is of {snap['strategy']!r}, not {self.strategy_name!r}")
        self._last_open = dict(snap["last_open"])
        self._strategies = {}
        for symbol, st in snap["symbols"].items():
            self._strategy(symbol).restore(st)
