"""Reader for Binance spot kline files (data.binance.vision layout), validated in one pass.

This is the decode step of replay, so the per-row loop is kept to a split, seven conversions, one
chained comparison and an append; anything unusual drops to a slow path that names the problem.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from shared.market import INTERVAL_MS, Bar

from ._files import CHUNK, NS_THRESHOLD, US_THRESHOLD, PathLike, as_paths, gc_paused, read_lines
from .quality import DataError, DataQuality, Gap, Problem, ProblemLog, fmt_ms

log = logging.getLogger(__name__)

COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
           "taker_buy_base", "taker_buy_quote", "ignore")
N_COLUMNS = len(COLUMNS)
# (column index, name, converter) of the columns a Bar needs; the others are not parsed.
_NEEDED: tuple[tuple[int, str, type], ...] = (
    (0, "open_time", int), (1, "open", float), (2, "high", float), (3, "low", float),
    (4, "close", float), (5, "volume", float), (6, "close_time", int),
)
# SYMBOL-INTERVAL-..., e.g. BTCUSDT-1m-2020-01-01.zip, BTCUSDT-1h-2021-Q1.csv
_NAME_RE = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+(?:mo|[smhdw]))-")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_INF = float("inf")


@dataclass(slots=True)
class KlineSeries:
    """Bars of one symbol and interval in file order, with the warnings found while reading."""

    bars: list[Bar]
    symbol: str
    interval: str
    quality: DataQuality = field(default_factory=DataQuality)

    def __len__(self) -> int:
        return len(self.bars)


def parse_kline_name(name: str) -> tuple[str | None, str | None]:
    """(symbol, interval) from a Binance archive file name, or (None, None) if it does not tell."""
    m = _NAME_RE.match(name)
    if not m:
        return None, None
    return m["symbol"], m["interval"]


def read_klines(paths: PathLike | Iterable[PathLike], symbol: str | None = None,
                interval: str | None = None,
                progress: Callable[[int], object] | None = None) -> KlineSeries:
    """Read kline CSV/zip files, concatenated in the given order, into validated bars.

    Raises DataError (listing file, line and column) for rows that cannot be trusted; gaps,
    zero-volume bars and odd close times are returned untouched and reported in `quality`.
    `progress(n)` is called about every 10,000 rows with the rows done since its previous call
    (a tqdm `update`, as replay's progress does); the calls add up to the total.
    """
    files = as_paths(paths)
    symbol, interval = _resolve_names(files, symbol, interval)
    if symbol is None:
        raise ValueError(f"cannot tell the symbol of {files[0].name}: name the file like "
                         f"BTCUSDT-1m-2020-01-01.csv or pass symbol=")
    bars: list[Bar] = []
    quality = DataQuality()
    problems = ProblemLog()
    prev = -1
    rows_done = 0
    file_starts: list[tuple[int, str]] = []  # (index of its first bar, source) of each file read
    for path in files:
        source, lines = read_lines(path)
        header = 1 if lines[0].split(",", 1)[0].strip().lower() in ("open_time", "open time") else 0
        if interval is None:
            interval = _infer_interval(source, lines[header:])
        file_starts.append((len(bars), source))
        with gc_paused():
            prev, rows_done = _scan(source, lines, header, symbol, interval, prev, file_starts, bars,
                                    quality, problems, rows_done, progress)
    problems.raise_if_any()
    assert interval is not None
    quality.rows = len(bars)
    quality.symbol, quality.interval = symbol, interval
    if bars:
        quality.first_open_time, quality.last_open_time = bars[0].open_time, bars[-1].open_time
    if not quality.ok:
        log.info("%s", quality.summary())
    return KlineSeries(bars=bars, symbol=symbol, interval=interval, quality=quality)


def _resolve_names(files: list[Path], symbol: str | None,
                   interval: str | None) -> tuple[str | None, str | None]:
    """Symbol and interval from the arguments, else the file names; they must agree across files."""
    named_symbols: dict[str, str] = {}
    named_intervals: dict[str | None, str] = {}
    for p in files:
        s, iv = parse_kline_name(p.name)
        if s is not None:
            named_symbols.setdefault(s, p.name)
            named_intervals.setdefault(iv, p.name)
    for label, given, named in (("symbol", symbol, named_symbols), ("interval", interval, named_intervals)):
        if len(named) > 1:
            raise ValueError(f"files mix {label}s: " + ", ".join(f"{v} ({n})" for v, n in named.items()))
        if given is not None and named and given not in named:
            (v, n), = named.items()
            raise ValueError(f"{label}={given!r} contradicts the file name {n} ({label} {v})")
    symbol = symbol if symbol is not None else next(iter(named_symbols), None)
    interval = interval if interval is not None else next(iter(named_intervals), None)
    if symbol is not None and not _SYMBOL_RE.match(symbol):
        raise ValueError(f"symbol {symbol!r} must be upper-case letters and digits, e.g. BTCUSDT")
    if interval is not None and interval not in INTERVAL_MS:
        raise ValueError(f"unsupported interval {interval!r}; supported: {', '.join(INTERVAL_MS)}")
    return symbol, interval


def _infer_interval(source: str, lines: list[str]) -> str:
    """The interval whose length matches close_time - open_time + 1 on most of the first rows."""
    spans: Counter[int] = Counter()
    for line in lines[:200]:
        row = line.split(",")
        try:
            ot, ct = int(row[0]), int(row[6])
        except (ValueError, IndexError):
            continue
        if ot >= US_THRESHOLD:
            ot //= 1000
        if ct >= US_THRESHOLD:
            ct //= 1000
        spans[ct - ot + 1] += 1
    by_ms = {ms: name for name, ms in INTERVAL_MS.items()}
    for span, _ in spans.most_common():
        if span in by_ms:
            return by_ms[span]
    raise DataError([Problem(source, None, "cannot infer the interval: the file name does not tell and "
                                           "close_time - open_time + 1 matches no Binance interval; "
                                           "pass interval=")])


def _scan(source: str, lines: list[str], header: int, symbol: str, interval: str, prev: int,
          file_starts: list[tuple[int, str]], bars: list[Bar], quality: DataQuality, problems: ProblemLog,
          rows_done: int, progress: Callable[[int], object] | None) -> tuple[int, int]:
    """Validate and convert one file's rows, appending to `bars`; returns (last open_time, rows done).

    The fast path is one chained comparison that holds for every good row; any row failing it
    goes to `_diagnose`. Row line numbers are not counted in the loop: each line yields exactly
    one bar or one bad row, so the line number is recovered from those counts when needed.
    """
    ims = INTERVAL_MS[interval]
    span = ims - 1
    append = bars.append
    gaps = quality.gaps
    zero_volume = quality.zero_volume
    irregular = quality.irregular_close_time
    misaligned = quality.misaligned
    start_len = len(bars)
    first_line = header + 1
    bad = 0
    inf = _INF
    us = US_THRESHOLD
    n = len(lines)
    for start in range(header, n, CHUNK):
        for line in lines[start:start + CHUNK]:
            row = line.split(",")
            try:
                ot = int(row[0])
                o = float(row[1])
                h = float(row[2])
                lo = float(row[3])
                c = float(row[4])
                v = float(row[5])
                ct = int(row[6])
            except (ValueError, IndexError):
                ot = ct = -1  # fails `prev < ot` first, so the slow path names the column
            if ot >= us or ct >= us:
                if ot % 1000 == 0 and us <= ot < NS_THRESHOLD:
                    ot //= 1000
                if us <= ct < NS_THRESHOLD:
                    ct //= 1000
            if prev < ot <= ct < us and len(row) == N_COLUMNS and 0.0 < lo <= o <= h and lo <= c <= h < inf \
                    and 0.0 <= v < inf:
                if ot != prev + ims and prev >= 0:
                    step = ot - prev
                    if step % ims:
                        misaligned.append(ot)
                    else:
                        gaps.append(Gap(prev, ot, step // ims - 1))
                if ct != ot + span:
                    irregular.append(ot)
                if v == 0.0:
                    zero_volume.append(ot)
                prev = ot
                append(Bar(symbol, interval, ot, ct, o, h, lo, c, v))
            else:
                line_no = first_line + (len(bars) - start_len) + bad
                bad += 1
                for column, message in _diagnose(row, prev, bars, file_starts):
                    problems.add(Problem(source, line_no, message, column))
        done = min(CHUNK, n - start)
        rows_done += done
        if progress is not None:
            progress(done)
    return prev, rows_done


def _diagnose(row: list[str], prev: int, bars: list[Bar],
              file_starts: list[tuple[int, str]]) -> list[tuple[str | None, str]]:
    """Every reason a row failed the fast check, as (column or None, message)."""
    if len(row) != N_COLUMNS:
        return [(None, f"expected {N_COLUMNS} comma-separated columns, found {len(row)}")]
    values: dict[str, float | int] = {}
    out: list[tuple[str | None, str]] = []
    for idx, name, conv in _NEEDED:
        text = row[idx].strip()
        try:
            value = conv(text)
        except ValueError:
            kind = "an integer" if conv is int else "a number"
            out.append((name, f"{text!r} is not {kind}"))
            continue
        if conv is float and not (-_INF < value < _INF):
            out.append((name, f"{text!r} is not a finite number"))
            continue
        values[name] = value
    if out:
        return out
    ot, ct = int(values["open_time"]), int(values["close_time"])
    for name, t in (("open_time", ot), ("close_time", ct)):
        if t < 0:
            out.append((name, f"negative time {t}"))
        elif t >= NS_THRESHOLD:
            out.append((name, f"time {t} is beyond microseconds (nanoseconds are not supported)"))
    if US_THRESHOLD <= ot < NS_THRESHOLD:
        if ot % 1000:
            out.append(("open_time", f"microsecond open_time {ot} is not a whole millisecond"))
        ot //= 1000
    if US_THRESHOLD <= ct < NS_THRESHOLD:
        ct //= 1000
    if 0 <= ct < ot:
        out.append(("close_time", f"close_time {ct} is before open_time {ot}"))
    o, h, lo, c, v = (float(values[k]) for k in ("open", "high", "low", "close", "volume"))
    for name, price in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if price <= 0.0:
            out.append((name, f"non-positive price {price!r}"))
    if h < max(o, c):
        out.append(("high", f"high {h!r} is below max(open, close) = {max(o, c)!r}"))
    if lo > min(o, c):
        out.append(("low", f"low {lo!r} is above min(open, close) = {min(o, c)!r}"))
    if v < 0.0:
        out.append(("volume", f"negative volume {v!r}"))
    if 0 <= ot <= prev:
        # Bars read so far are strictly increasing, so an earlier copy is found by bisection.
        i = bisect.bisect_left(bars, ot, key=_open_time)
        if i < len(bars) and bars[i].open_time == ot:
            out.append(("open_time", f"duplicate open_time {ot} ({fmt_ms(ot)}), already read "
                                     f"{_where(i, file_starts)}"))
        else:
            out.append(("open_time", f"open_time {ot} ({fmt_ms(ot)}) is out of order: before the previous "
                                     f"bar's {prev} ({fmt_ms(prev)}), {_where(len(bars) - 1, file_starts)}"))
    if not out:  # never accept a row the fast check refused
        out.append((None, "row failed validation"))
    return out


def _open_time(bar: Bar) -> int:
    return bar.open_time


def _where(index: int, file_starts: list[tuple[int, str]]) -> str:
    """'in <file> (bar n)' for the bar at `index` of the concatenated series."""
    k = bisect.bisect_right([start for start, _ in file_starts], index) - 1
    start, source = file_starts[k]
    return f"in {source} (bar {index - start + 1} of that file)"
