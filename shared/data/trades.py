"""Reader for Binance trade files: the headerless trade archive and the captured websocket CSV.

Ticks feed paper fills on trades, so the same one-pass, report-everything policy as the kline
reader applies: a gap in trade ids is a warning (the trades are simply not there), while a repeated
or backwards id or time, a non-positive price or quantity, or a malformed row is a DataError.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from shared.gc_pause import gc_paused
from shared.market import Tick

from ._files import CHUNK, NS_THRESHOLD, US_THRESHOLD, PathLike, as_paths, read_lines
from .quality import DataError, IdGap, Problem, ProblemLog, TradeQuality, fmt_ms

log = logging.getLogger(__name__)

# data.binance.vision spot trade archive, no header.
ARCHIVE_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match")
# Header names (lower-cased) accepted for each field, most specific first. `TransactionTime` is the
# trade time (`T`); `EventTime` is when the stream sent it, so it is deliberately not an alias.
_ALIASES: dict[str, tuple[str, ...]] = {
    "trade_id": ("tradeid", "trade_id", "id"),
    "price": ("price", "p"),
    "qty": ("quantity", "qty", "q"),
    "time": ("transactiontime", "trade_time", "time", "t"),
    "is_buyer_maker": ("isbuyermarketmaker", "is_buyer_maker", "m"),
}
_BOOLS = {"True": True, "False": False, "true": True, "false": False, "TRUE": True, "FALSE": False,
          "1": True, "0": False}
_NAME_RE = re.compile(r"^(?P<symbol>[A-Z0-9]+)-trades?-")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_INF = float("inf")


class TickList(list[Tick]):
    """The ticks, in file order, plus the quality report and symbol (a list, so it is a list[Tick])."""

    quality: TradeQuality
    symbol: str
    starts: list[int]  # index of each file's first tick, in file order


class _Layout:
    """Column positions in one file, resolved from its header or the archive layout."""

    __slots__ = ("header", "i_id", "i_m", "i_price", "i_qty", "i_sym", "i_time", "names", "ncols")

    def __init__(self, names: tuple[str, ...], header: int) -> None:
        self.names = names
        self.ncols = len(names)
        self.header = header
        lower = [n.strip().lower() for n in names]
        pos: dict[str, int] = {}
        for field, aliases in _ALIASES.items():
            for alias in aliases:
                if alias in lower:
                    pos[field] = lower.index(alias)
                    break
        self.i_id = pos.get("trade_id", -1)
        self.i_price = pos.get("price", -1)
        self.i_qty = pos.get("qty", -1)
        self.i_time = pos.get("time", -1)
        self.i_m = pos.get("is_buyer_maker", -1)
        self.i_sym = lower.index("symbol") if "symbol" in lower else -1

    def missing(self) -> list[str]:
        return [f for f, i in (("trade_id", self.i_id), ("price", self.i_price), ("qty", self.i_qty),
                               ("time", self.i_time), ("is_buyer_maker", self.i_m)) if i < 0]


def read_trades(paths: PathLike | Iterable[PathLike], symbol: str | None = None,
                progress: Callable[[int], object] | None = None) -> TickList:
    """Read trade files, concatenated in the given order, into validated ticks (times in ms).

    Handles the headerless Binance trade archive (.csv or .zip; time in ms or µs) and CSVs with a
    header such as the websocket capture (TimestampOfReceive, ..., TransactionTime, Symbol, TradeId,
    Price, Quantity, IsBuyerMarketMaker, ...). Gaps in trade ids are reported in `.quality`.
    `progress(n)` gets the rows done since its previous call, about every 10,000 rows.
    """
    files = as_paths(paths)
    if symbol is not None and not _SYMBOL_RE.match(symbol):
        raise ValueError(f"symbol {symbol!r} must be upper-case letters and digits, e.g. BTCUSDT")
    ticks = TickList()
    quality = TradeQuality()
    problems = ProblemLog()
    prev_id, prev_t, rows_done = -1, 0, 0
    ticks.starts = []
    for i, path in enumerate(files):
        ticks.starts.append(len(ticks))
        source, lines = read_lines(path)
        layout = _layout(source, lines[0])
        symbol = _file_symbol(path, source, lines, layout, symbol)
        prev_source = str(files[i - 1]) if i else None
        with gc_paused():
            prev_id, prev_t, rows_done = _scan(source, lines, layout, symbol, prev_id, prev_t, prev_source,
                                               ticks, quality, problems, rows_done, progress)
    problems.raise_if_any()
    assert symbol is not None
    ticks.symbol = symbol
    quality.rows = len(ticks)
    quality.symbol = symbol
    if ticks:
        quality.first_time, quality.last_time = ticks[0].time, ticks[-1].time
    ticks.quality = quality
    if not quality.ok:
        log.info("%s", quality.summary())
    return ticks


def _layout(source: str, first_line: str) -> _Layout:
    """Header-mapped layout if the first line is a header, else the archive's fixed columns."""
    first = first_line.split(",")
    try:
        int(first[0])
    except ValueError:
        layout = _Layout(tuple(c.strip() for c in first), header=1)
        missing = layout.missing()
        if missing:
            raise DataError([Problem(source, 1, f"header has no column for {', '.join(missing)} "
                                                f"(columns: {', '.join(layout.names)})")]) from None
        return layout
    return _Layout(ARCHIVE_COLUMNS, header=0)


def _file_symbol(path: Path, source: str, lines: list[str], layout: _Layout, symbol: str | None) -> str:
    """The symbol: given, else the Symbol column, else the file name; all that are known must agree."""
    m = _NAME_RE.match(path.name)
    named = m["symbol"] if m else None
    in_file = None
    if layout.i_sym >= 0 and len(lines) > layout.header:
        row = lines[layout.header].split(",")
        if len(row) > layout.i_sym:
            in_file = row[layout.i_sym].strip()
    for label, value in (("file name", named), ("Symbol column", in_file)):
        if value is None:
            continue
        if symbol is None:
            symbol = value
        elif value != symbol:
            raise DataError([Problem(source, None, f"symbol {symbol} expected but the {label} says {value}")])
    if symbol is None:
        raise ValueError(f"cannot tell the symbol of {path.name}: name the file like "
                         f"BTCUSDT-trades-2025-01-01.csv, add a Symbol column or pass symbol=")
    if not _SYMBOL_RE.match(symbol):
        raise DataError([Problem(source, None, f"symbol {symbol!r} is not upper-case letters and digits")])
    return symbol


def _scan(source: str, lines: list[str], layout: _Layout, symbol: str, prev_id: int, prev_t: int,
          prev_source: str | None, ticks: TickList, quality: TradeQuality, problems: ProblemLog,
          rows_done: int, progress: Callable[[int], object] | None) -> tuple[int, int, int]:
    """Validate and convert one file's rows; returns (last id, last time, rows done).

    Same shape as the kline loop: one chained comparison on the fast path, `_diagnose` otherwise,
    line numbers recovered from the counts of good and bad rows.
    """
    i_id, i_p, i_q, i_t, i_m, i_sym = (layout.i_id, layout.i_price, layout.i_qty, layout.i_time,
                                       layout.i_m, layout.i_sym)
    ncols = layout.ncols
    bools = _BOOLS
    append = ticks.append
    id_gaps = quality.id_gaps
    start_len = len(ticks)
    first_line = layout.header + 1
    bad = 0
    us = US_THRESHOLD
    inf = _INF
    n = len(lines)
    for start in range(layout.header, n, CHUNK):
        for line in lines[start:start + CHUNK]:
            row = line.split(",")
            try:
                tid = int(row[i_id])
                p = float(row[i_p])
                q = float(row[i_q])
                t = int(row[i_t])
                m = bools[row[i_m]]
            except (ValueError, IndexError, KeyError):
                tid = t = -1  # fails `prev_id < tid` first, so the slow path names the column
            if t >= us:
                t //= 1000
            if prev_id < tid and prev_t <= t < us and len(row) == ncols and 0.0 < p < inf \
                    and 0.0 < q < inf and (i_sym < 0 or row[i_sym] == symbol):
                if tid != prev_id + 1 and prev_id >= 0:
                    id_gaps.append(IdGap(prev_id, tid, tid - prev_id - 1))
                prev_id = tid
                prev_t = t
                append(Tick(symbol, tid, p, q, t, m))
            else:
                line_no = first_line + (len(ticks) - start_len) + bad
                bad += 1
                crossed = prev_source if len(ticks) == start_len else None
                for column, message in _diagnose(row, layout, symbol, prev_id, prev_t, crossed):
                    problems.add(Problem(source, line_no, message, column))
        done = min(CHUNK, n - start)
        rows_done += done
        if progress is not None:
            progress(done)
    return prev_id, prev_t, rows_done


def _diagnose(row: list[str], layout: _Layout, symbol: str, prev_id: int, prev_t: int,
              prev_source: str | None) -> list[tuple[str | None, str]]:
    """Every reason a trade row failed the fast check, as (column or None, message)."""
    if len(row) != layout.ncols:
        return [(None, f"expected {layout.ncols} comma-separated columns, found {len(row)}")]
    names = layout.names
    out: list[tuple[str | None, str]] = []
    values: dict[str, float | int | bool] = {}
    for field, idx, conv in (("trade_id", layout.i_id, int), ("price", layout.i_price, float),
                             ("qty", layout.i_qty, float), ("time", layout.i_time, int)):
        text = row[idx].strip()
        try:
            value = conv(text)
        except ValueError:
            out.append((names[idx], f"{text!r} is not {'an integer' if conv is int else 'a number'}"))
            continue
        if conv is float and not (-_INF < value < _INF):
            out.append((names[idx], f"{text!r} is not a finite number"))
            continue
        values[field] = value
    flag = row[layout.i_m]
    if flag not in _BOOLS:
        out.append((names[layout.i_m], f"{flag!r} is not a boolean (True/False/1/0)"))
    if layout.i_sym >= 0 and row[layout.i_sym] != symbol:
        out.append((names[layout.i_sym], f"symbol {row[layout.i_sym]!r} in a file of {symbol}"))
    if "price" in values and values["price"] <= 0:
        out.append((names[layout.i_price], f"non-positive price {values['price']!r}"))
    if "qty" in values and values["qty"] <= 0:
        out.append((names[layout.i_qty], f"non-positive quantity {values['qty']!r}"))
    where = f" (previous trade in {prev_source})" if prev_source else ""
    if "trade_id" in values:
        tid = int(values["trade_id"])
        if tid < 0:
            out.append((names[layout.i_id], f"negative trade id {tid}"))
        elif tid == prev_id:
            out.append((names[layout.i_id], f"duplicate trade id {tid}{where}"))
        elif tid < prev_id:
            out.append((names[layout.i_id], f"trade id {tid} is out of order: below the previous "
                                            f"id {prev_id}{where}"))
    if "time" in values:
        t = int(values["time"])
        if t < 0:
            out.append((names[layout.i_time], f"negative time {t}"))
        elif t >= NS_THRESHOLD:
            out.append((names[layout.i_time], f"time {t} is beyond microseconds (nanoseconds are not "
                                              f"supported)"))
        else:
            ms = t // 1000 if t >= US_THRESHOLD else t
            if ms < prev_t:
                out.append((names[layout.i_time], f"time {ms} ({fmt_ms(ms)}) is out of order: before the "
                                                  f"previous trade's {prev_t} ({fmt_ms(prev_t)}){where}"))
    if not out:  # never accept a row the fast check refused
        out.append((None, "row failed validation"))
    return out
