"""Summary figures of a replay, defined exactly as backtesting.py 0.6.6 computes them.

MarketFlow's replay is checked against backtesting.py trade for trade, so its headline numbers
must mean the same thing: a user comparing our report with a backtesting.py run should see the
same Return, Win Rate, Exposure and Max. Drawdown, not numbers that differ by definition. Each
figure is computed with the same float operations in the same order as `backtesting._stats`
(numpy's element-wise operations, which are those of plain Python floats).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shared.market import Bar
    from shared.pipeline.replay import ReplayResult
    from shared.portfolio import ClosedTrade

#: The keys `summarize` returns, in this order (summary.json keeps it).
SUMMARY_KEYS: tuple[str, ...] = (
    "n_trades", "return_pct", "equity_final", "win_rate_pct", "max_drawdown_pct", "exposure_pct",
    "commissions", "events", "events_per_s", "rejections", "reduced",
)


def bar_index(open_times: Sequence[int], time: int) -> int:
    """Index of the bar a fill at `time` (ms UTC) happened in: the last bar opened at or before it.

    Replay fills at a bar's open, so this is the bar whose open time equals the fill time; the
    bisection also places fills that happen inside a bar (trade-level data) in that bar.
    """
    i = bisect_right(open_times, time) - 1
    if i < 0:
        raise ValueError(f"time {time} is before the first bar ({open_times[0] if open_times else None})")
    return i


def open_times_of(bars: Sequence[Bar]) -> np.ndarray:
    """The bars' open times as an int64 array."""
    return np.fromiter(map(attrgetter("open_time"), bars), dtype=np.int64, count=len(bars))


def trade_bars(bars: Sequence[Bar], trades: Sequence[ClosedTrade],
               open_times: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(entry bar, exit bar) index of each closed trade: backtesting.py's EntryBar/ExitBar.

    A fill time equal to a bar's open maps to that bar (its first occurrence, should the bars hold
    a redelivered copy); any other time goes through `bar_index`, which needs time-ordered bars.
    `open_times` (`open_times_of(bars)`) may be passed when the caller has it already.
    """
    times = open_times_of(bars) if open_times is None else open_times
    if not trades:
        return []
    if len(times) and bool((np.diff(times) > 0).all()):
        # Strictly increasing (every replay's bars): both rules are a binary search.
        fills = np.array([(t.entry_time, t.exit_time) for t in trades], dtype=np.int64).ravel()
        left = np.searchsorted(times, fills, side="left")
        exact_hit = (left < len(times)) & (times[np.minimum(left, len(times) - 1)] == fills)
        idx = np.where(exact_hit, left, np.searchsorted(times, fills, side="right") - 1)
        if (idx < 0).any():
            raise ValueError(f"time {int(fills[np.argmax(idx < 0)])} is before the first bar ({int(times[0])})")
        flat = idx.tolist()
        return list(zip(flat[0::2], flat[1::2], strict=True))
    listed: list[int] = times.tolist()
    exact: dict[int, int] = {}
    for i, t in enumerate(listed):
        exact.setdefault(t, i)

    def index(time: int) -> int:
        i = exact.get(time)
        return i if i is not None else bar_index(listed, time)

    return [(index(t.entry_time), index(t.exit_time)) for t in trades]


def exposure_pct(n_bars: int, spans: Sequence[tuple[int, int]]) -> float:
    """Share of bars, in %, inside [entry bar, exit bar] of some closed trade, both ends included.

    backtesting.py counts the exit bar as exposed although the position is closed at its open,
    and counts time in bars, not clock time (gaps in the data do not weigh). Overlapping spans
    count once. An open position at the end is not a closed trade, so it does not count.
    """
    if n_bars <= 0:
        return 0.0
    exposed = bytearray(n_bars)
    for entry, exit_ in spans:
        lo, hi = max(entry, 0), min(exit_, n_bars - 1)
        if hi >= lo:
            exposed[lo:hi + 1] = b"\x01" * (hi - lo + 1)
    return sum(exposed) / n_bars * 100


def _fall(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """`1 - equity/peak` at each point (the running peak), 0 where the peak is not positive."""
    eq = np.asarray(equity, dtype=np.float64)
    if not len(eq):
        return eq
    peak = np.maximum.accumulate(eq)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1 - eq / peak, 0.0)


def drawdown_pct(equity: Sequence[float] | np.ndarray) -> np.ndarray:
    """Drawdown of each point from the running peak, in % (<= 0), as `-(1 - equity/peak) * 100`."""
    return -_fall(equity) * 100


def max_drawdown_pct(equity: Sequence[float] | np.ndarray) -> float:
    """Deepest peak-to-trough fall of the close-marked equity curve, as a negative %.

    backtesting.py: `-(1 - equity / maximum.accumulate(equity)).max() * 100`; a curve that never
    falls gives -0.0, which is what it prints too.
    """
    fall = _fall(equity)
    worst = max(float(fall.max()), 0.0) if len(fall) else 0.0
    return -worst * 100


def win_rate_pct(trades: Sequence[ClosedTrade]) -> float:
    """Share of closed trades with PnL > 0 (after commission), in %; NaN without closed trades.

    NaN, as backtesting.py gives, keeps the figure a float for printing; summary.json writes it
    as null. A zero-PnL trade is not a win.
    """
    if not trades:
        return math.nan
    return sum(1 for t in trades if t.pnl > 0) / len(trades) * 100


def return_pct(final_equity: float, cash: float) -> float:
    """Total return of the final equity (open position marked at the last close) on the initial cash, in %."""
    return (final_equity - cash) / cash * 100


def summarize(result: ReplayResult, open_times: np.ndarray | None = None) -> dict[str, Any]:
    """The headline figures of a replay, with backtesting.py's definitions.

    - n_trades: closed round trips only; a position still open at the end is not a trade.
    - return_pct: `(equity_final - cash) / cash * 100`.
    - equity_final: equity marked at the last bar's close, the open position included at that
      close with its entry commission paid and no exit commission.
    - win_rate_pct: closed trades with PnL > 0 over all closed trades, in % (NaN if none).
    - max_drawdown_pct: deepest fall of the close-marked equity curve from its running peak,
      negative % (`-max(1 - equity/peak) * 100`).
    - exposure_pct: share of bars inside [entry bar, exit bar], inclusive, of closed trades, in %;
      bar indexes come from the fill times (the open time of the fill bar).
    - commissions: both legs' commissions of closed trades, in the quote asset; the entry
      commission of an open position is in the equity but not here.
    - events: events the pipeline handled (bars, signals, decisions, intents, reports).
    - events_per_s: events over the replay's wall time (NaN if it was not measured); it varies
      run to run, unlike every other figure.
    - rejections: risk rejection reason code -> count (both layers).
    - reduced: intents that risk cut down instead of rejecting.
    """
    bars = result.bars
    trades = result.trades
    spans = trade_bars(bars, trades, open_times)
    elapsed = result.elapsed_s
    return {
        "n_trades": len(trades),
        "return_pct": return_pct(result.final_equity, result.cash),
        "equity_final": float(result.final_equity),
        "win_rate_pct": win_rate_pct(trades),
        "max_drawdown_pct": max_drawdown_pct(result.equity),
        "exposure_pct": exposure_pct(len(bars), spans),
        "commissions": float(sum(t.commission for t in trades)),
        "events": int(result.events),
        "events_per_s": result.events / elapsed if elapsed > 0 else math.nan,
        "rejections": {str(k): int(v) for k, v in sorted(result.rejections.items())},
        "reduced": int(result.reduced),
    }
