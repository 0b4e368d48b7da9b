"""Per-bar table of every streaming indicator, as CSV text, in the TA-Lib oracle's column layout.

Used to eyeball and diff indicator values against TA-Lib or another tool: warm-up bars have empty
cells (TA-Lib's NaN lookback), numbers are written with repr() so each float64 reads back exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from shared.market import Bar

from .moving import EMA, SMA
from .oscillators import MACD, RSI
from .volatility import ATR, BollingerBands, TrueRange

COLUMNS: tuple[str, ...] = (
    "open_time", "close", "sma_10", "sma_20", "ema_10", "ema_12", "ema_20", "ema_26", "rsi_14",
    "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9", "bb_upper_20_2", "bb_middle_20_2",
    "bb_lower_20_2", "trange", "atr_14",
)


def _cell(x: float | None) -> str:
    return "" if x is None else repr(x)


def indicator_rows(bars: Iterable[Bar]) -> Iterator[list[str]]:
    """One row of strings per bar, in `COLUMNS` order (data rows only; the header is `COLUMNS`)."""
    smas = (SMA(10), SMA(20))
    emas = (EMA(10), EMA(12), EMA(20), EMA(26))
    rsi = RSI(14)
    macd = MACD(12, 26, 9)
    bb = BollingerBands(20, 2.0, 2.0)
    tr = TrueRange()
    atr = ATR(14)
    for bar in bars:
        c = bar.close
        row = [str(bar.open_time), repr(c)]
        row.extend(_cell(ind.update(c)) for ind in smas)
        row.extend(_cell(ind.update(c)) for ind in emas)
        row.append(_cell(rsi.update(c)))
        m = macd.update(c)
        row.extend(("", "", "") if m is None else (repr(m[0]), repr(m[1]), repr(m[2])))
        b = bb.update(c)
        row.extend(("", "", "") if b is None else (repr(b[0]), repr(b[1]), repr(b[2])))
        row.append(_cell(tr.update(bar.high, bar.low, c)))
        row.append(_cell(atr.update(bar.high, bar.low, c)))
        yield row


def write_indicators_csv(bars: Iterable[Bar], out: Path) -> int:
    """Write the header and one row per bar to `out` (parents created); returns the data-row count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", newline="", encoding="ascii") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in indicator_rows(bars):
            writer.writerow(row)
            n += 1
    return n
