"""Reader for Binance spot kline files (data.binance.vision layout), validated in one pass.

This is the decode step of replay, so rows are converted and checked a block at a time, column by
column, with C-level iteration (map, compress, all) and no Python code per row; a block with any
bad or unusual row goes through the per-row loop instead, which names every problem.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyarrow import csv as pa_csv

from shared.gc_pause import gc_paused
from shared.market import INTERVAL_MS, Bar

from ._files import CHUNK, FUTURE_MS, NS_THRESHOLD, US_THRESHOLD, PathLike, as_paths, empty_file, open_text
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
# Bar has no __new__ of its own, so object.__new__(Bar) then Bar.__init__ is exactly Bar(...).
_BAR_PLAIN_NEW = Bar.__new__ is object.__new__
_BAR_INIT = Bar.__init__


@dataclass(slots=True)
class KlineSeries:
    """Bars of one symbol and interval in file order, with the warnings found while reading."""

    bars: list[Bar]
    symbol: str
    interval: str
    quality: DataQuality = field(default_factory=DataQuality)
    starts: list[int] = field(default_factory=list)  # index of each file's first bar, in file order

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
    file_starts: list[tuple[int, str]] = []  # (index of its first bar, source) of each file read
    with gc_paused():  # over all the files: one collection afterwards, not a round per file
        for path in files:
            with open_text(path) as (source, pieces):
                # The first line (a header?) and, to infer the interval, up to 200 rows after it.
                text = ""
                for piece in pieces:
                    text += piece
                    if len(_head(text, 0, 202)) > 201:
                        break
                if not text:
                    raise empty_file(source)
                first_end = text.find("\n")
                first_line = text if first_end < 0 else text[:first_end]
                header = first_line.split(",", 1)[0].strip().lower() in ("open_time", "open time")
                start = (len(text) if first_end < 0 else first_end + 1) if header else 0
                if interval is None:
                    interval = _infer_interval(source, _head(text, start, 200))
                file_starts.append((len(bars), source))
                prev = _scan(source, chain((text[start:],), pieces), 1 + header, symbol, interval, prev,
                             file_starts, bars, quality, problems, progress)
                del text
    problems.raise_if_any()
    assert interval is not None
    quality.rows = len(bars)
    quality.symbol, quality.interval = symbol, interval
    if bars:
        quality.first_open_time, quality.last_open_time = bars[0].open_time, bars[-1].open_time
    if not quality.ok:
        log.info("%s", quality.summary())
    return KlineSeries(bars=bars, symbol=symbol, interval=interval, quality=quality,
                       starts=[start for start, _ in file_starts])


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


def _head(text: str, pos: int, count: int) -> list[str]:
    """Up to `count` lines of `text` from `pos` on (a final empty line is not one)."""
    out: list[str] = []
    end = len(text)
    while pos < end and len(out) < count:
        nl = text.find("\n", pos)
        if nl < 0:
            nl = end
        out.append(text[pos:nl])
        pos = nl + 1
    return out


def _scan(source: str, pieces: Iterable[str], line_no: int, symbol: str, interval: str, prev: int,
          file_starts: list[tuple[int, str]], bars: list[Bar], quality: DataQuality, problems: ProblemLog,
          progress: Callable[[int], object] | None) -> int:
    """Validate and convert the rows of one file, whose text comes in `pieces` (the first row on
    line `line_no`), appending to `bars`; returns the last good open_time.

    Each piece (about PIECE_BYTES of text) is cut after its last newline, the unfinished line
    carried over to the next piece, and the block of whole lines is first tried by `_parse` and
    `_columns` (Arrow's CSV parser, then whole-column checks); a block they refuse (a bad row, or an
    unusual one such as ms and µs times mixed) goes through `_rows`, the per-row loop that names
    every problem. Both leave the same bars, warnings and errors. Arrow parses one block ahead on a
    worker thread (it releases the GIL), so parsing overlaps the checks and Bar building here.
    """
    done = reported = 0  # rows of this file read, and reported to `progress`
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kline-parse") as pool:
        for block, n, parsed in _parsed_ahead(pieces, pool):
            prev = _block(source, block, n, parsed.result(), line_no, symbol, interval, prev, file_starts, bars,
                          quality, problems)
            line_no += n
            done += n
            if progress is not None and done - reported >= CHUNK:
                while done - reported >= CHUNK:
                    progress(CHUNK)
                    reported += CHUNK
    if progress is not None and done > reported:
        progress(done - reported)
    return prev


def _parsed_ahead(pieces: Iterable[str], pool: ThreadPoolExecutor,
                  ) -> Iterator[tuple[str, int, Future[list[np.ndarray] | None]]]:
    """(block, its line count, its Arrow parse) in order, the next block's parse already started
    on `pool` when a block is handed out."""
    ahead: tuple[str, int, Future[list[np.ndarray] | None]] | None = None
    for block, n in _blocks(pieces):
        started = (block, n, pool.submit(_parse, block, n))
        if ahead is not None:
            yield ahead
        ahead = started
    if ahead is not None:
        yield ahead


def _blocks(pieces: Iterable[str]) -> Iterator[tuple[str, int]]:
    """The text in blocks of whole newline-terminated lines, with their count; a last line without
    a terminator gets one."""
    rest = ""  # the start of a line whose end is in the next piece
    for piece in pieces:
        cut = piece.rfind("\n") + 1
        if not cut:
            rest += piece
            continue
        block = rest + piece[:cut] if rest else piece[:cut]
        rest = piece[cut:]
        yield block, block.count("\n")
    if rest:
        yield rest + "\n", 1


def _block(source: str, block: str, n: int, cols: list[np.ndarray] | None, line_no: int, symbol: str,
           interval: str, prev: int, file_starts: list[tuple[int, str]], bars: list[Bar], quality: DataQuality,
           problems: ProblemLog) -> int:
    """`n` newline-terminated lines (`cols`: their `_parse`) through `_columns`, or `_rows` if either
    refused them; the last good open_time."""
    last = None if cols is None else _columns(cols, prev, symbol, interval, bars, quality)
    if last is None:
        lines = block.split("\n")
        lines.pop()  # the empty text after the last newline
        last = _rows(source, lines, line_no, symbol, interval, prev, file_starts, bars, quality, problems)
    return last


# Arrow reads exactly what the per-row path accepts or refuses the block: 12 unquoted columns a
# line (another count is an error), no empty lines, no nulls, int64 times, float64 prices and
# volumes (correctly rounded, as float() is). Only the seven columns a Bar needs are converted.
_READ = pa_csv.ReadOptions(column_names=list(COLUMNS), use_threads=False)
_PARSE = pa_csv.ParseOptions(quote_char=False, double_quote=False, escape_char=False, ignore_empty_lines=False)
_CONVERT = pa_csv.ConvertOptions(
    column_types={name: pa.int64() if conv is int else pa.float64() for _, name, conv in _NEEDED},
    include_columns=[name for _, name, _ in _NEEDED], null_values=[], strings_can_be_null=False)


def _parse(block: str, n: int) -> list[np.ndarray] | None:
    """The columns open_time, open, high, low, close, volume, close_time of `n` lines, or None when
    Arrow refuses one (any malformed cell or line; the per-row path then names it)."""
    try:
        data = block.encode("ascii")
        table = pa_csv.read_csv(pa.py_buffer(data), read_options=_READ, parse_options=_PARSE,
                                convert_options=_CONVERT)
    except (UnicodeEncodeError, pa.ArrowInvalid):
        return None
    if table.num_rows != n:  # a lone CR, which Arrow also takes for a line end
        return None
    return [_numpy(column) for column in table.columns]


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A null-free int64 or float64 column as a numpy view of its data buffer. Not pyarrow's
    `to_numpy`: its first call imports pandas (about 0.4 s of every replay process), which
    nothing here needs. The convert options admit no nulls, so the buffer is the whole column."""
    arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    dtype = np.int64 if pa.types.is_int64(arr.type) else np.float64
    assert arr.null_count == 0 and np.dtype(dtype).itemsize == arr.type.byte_width
    if not len(arr):
        return np.empty(0, dtype=dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * arr.type.byte_width)


def _columns(cols: list[np.ndarray], prev: int, symbol: str, interval: str, bars: list[Bar],
             quality: DataQuality) -> int | None:
    """Check a block's columns (as `_parse` returns them) with whole-array operations; the last
    open_time, or None if any row is off.

    Returns None before touching `bars` or `quality`, so the caller can hand the block to `_rows`.
    The checks together are exactly the per-row fast check of `_rows`, applied to every row.
    """
    ot, o, h, lo, c, v, ct = cols
    us = US_THRESHOLD
    ims = INTERVAL_MS[interval]
    span = ims - 1
    # Microsecond times (Binance spot since 2025) become ms. Per row, an open_time converts when
    # it is a whole ms and a close_time always; here only all-µs or all-ms columns are handled.
    if ot[0] >= us or ot[-1] >= us:
        if ot.min() < us or ot.max() >= NS_THRESHOLD or (ot % 1000).any():
            return None
        ot = ot // 1000
    # Open times strictly increasing from after `prev`; usually exactly on the interval grid.
    first = int(ot[0])
    if first <= prev:
        return None
    steps = np.diff(ot)
    on_grid = bool((steps == ims).all())
    if not on_grid and not (steps > 0).all():
        return None
    # Close times at least the open time and below `us` once µs ones are converted.
    if ct.max() >= us:
        if ct.min() < us or ct.max() >= NS_THRESHOLD:
            return None
        ct = ct // 1000
    if not (ot <= ct).all() or ct.max() >= FUTURE_MS:
        return None
    # 0 < low <= open, close <= high < inf and 0 <= volume < inf; a NaN fails every comparison.
    if not ((lo > 0.0) & (lo <= o) & (o <= h) & (lo <= c) & (c <= h) & (h < _INF) & (v >= 0.0)
            & (v < _INF)).all():
        return None
    # Every row is good: the warnings, each list in row order, then the bars.
    if prev >= 0 and first != prev + ims:
        _step(prev, first, ims, quality)
    if not on_grid:
        for i in np.flatnonzero(steps != ims).tolist():
            _step(int(ot[i]), int(ot[i + 1]), ims, quality)
    irregular = ct != ot + span
    if irregular.any():
        quality.irregular_close_time.extend(ot[irregular].tolist())
    zero = v == 0.0
    if zero.any():
        quality.zero_volume.extend(ot[zero].tolist())
    n = len(ot)
    if _BAR_PLAIN_NEW:
        # What Bar(...) does, minus the per-call argument tuple: allocate, then run __init__.
        new = list(map(object.__new__, repeat(Bar, n)))
        deque(map(_BAR_INIT, new, repeat(symbol), repeat(interval), ot.tolist(), ct.tolist(), o.tolist(),
                  h.tolist(), lo.tolist(), c.tolist(), v.tolist()), 0)
        bars.extend(new)
    else:
        bars.extend(map(Bar, repeat(symbol), repeat(interval), ot.tolist(), ct.tolist(), o.tolist(), h.tolist(),
                        lo.tolist(), c.tolist(), v.tolist()))
    return int(ot[-1])


def _step(prev: int, ot: int, ims: int, quality: DataQuality) -> None:
    """Record the warning for a step between consecutive open times that is not one interval."""
    step = ot - prev
    if step % ims:
        quality.misaligned.append(ot)
    else:
        quality.gaps.append(Gap(prev, ot, step // ims - 1))


def _rows(source: str, lines: list[str], first_line: int, symbol: str, interval: str, prev: int,
          file_starts: list[tuple[int, str]], bars: list[Bar], quality: DataQuality,
          problems: ProblemLog) -> int:
    """Validate and convert `lines` (the first is line `first_line`) row by row, appending to `bars`;
    returns the last good open_time.

    The fast path is one chained comparison that holds for every good row; any row failing it
    goes to `_diagnose`, which names each problem.
    """
    ims = INTERVAL_MS[interval]
    span = ims - 1
    append = bars.append
    gaps = quality.gaps
    zero_volume = quality.zero_volume
    irregular = quality.irregular_close_time
    misaligned = quality.misaligned
    inf = _INF
    us = US_THRESHOLD
    future = FUTURE_MS
    for line_no, line in enumerate(lines, first_line):
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
        if prev < ot <= ct < future and len(row) == N_COLUMNS and 0.0 < lo <= o <= h and lo <= c <= h < inf \
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
            for column, message in _diagnose(row, prev, bars, file_starts):
                problems.add(Problem(source, line_no, message, column))
    return prev


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
    for name, t in (("open_time", ot), ("close_time", ct)):
        if FUTURE_MS <= t < US_THRESHOLD:
            out.append((name, f"time {t} ({fmt_ms(t)}) is after {fmt_ms(FUTURE_MS)}: not market history"))
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
