"""Write a replay's report folder: summary.json, trades.csv, equity.csv and report.html.

The CSVs and the JSON are for machines (diffing runs, comparing with backtesting.py), so they
keep full float precision (`repr`) and ISO-8601 UTC times. The HTML is for people: one file,
no scripts, fonts or network, that opens the same offline as it does attached to an e-mail.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from importlib import resources
from operator import attrgetter
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .folder import ReportFolder
from .metrics import drawdown_pct, open_times_of, summarize, trade_bars
from .svg import Chart, Marker, Segment, Series

if TYPE_CHECKING:
    from shared.pipeline.replay import ReplayResult
    from shared.portfolio import ClosedTrade, Position

TRADE_COLUMNS: tuple[str, ...] = ("entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl",
                                  "return_pct")
EQUITY_COLUMNS: tuple[str, ...] = ("time", "equity")
#: Rows of the HTML trades table; trades.csv always has every trade.
MAX_TABLE_ROWS = 2000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WIN, _LOSS, _OPEN = "#15803d", "#dc2626", "#2563eb"
_EQUITY, _BUYHOLD, _PRICE, _DD = "#2563eb", "#9aa5b1", "#3e4c59", "#dc2626"


def iso_utc(ms: int) -> str:
    """ISO-8601 UTC of Unix ms, e.g. 2020-01-01T00:34:00Z (milliseconds only when not zero)."""
    d = _EPOCH + timedelta(milliseconds=int(ms))
    if d.microsecond:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def _human_utc(ms: int) -> str:
    d = _EPOCH + timedelta(milliseconds=int(ms))
    return d.strftime("%Y-%m-%d %H:%M:%S" if d.second or d.microsecond else "%Y-%m-%d %H:%M")


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null: summary.json must stay strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _entry_price(pos: Position) -> float:
    return pos.last_entry_price if pos.entry_fills == 1 else pos.entry_notional / pos.entry_qty


def _open_position(result: ReplayResult) -> dict[str, Any] | None:
    pos = result.open_position
    if pos is None or pos.qty <= 0:
        return None
    return {
        "symbol": pos.symbol,
        "size": pos.qty,
        "entry_time": iso_utc(pos.entry_time),
        "entry_price": _entry_price(pos),
        "cost": pos.cost,
        "mark_price": pos.mark,
        # Marked at the last close, entry commission paid, no exit commission: as in equity_final.
        "unrealized_pnl": pos.unrealized,
    }


def build_summary(result: ReplayResult, extra: Mapping[str, Any] | None = None,
                  open_times: np.ndarray | None = None) -> dict[str, Any]:
    """summary.json's content: `summarize` first, then what the run was, then `extra` (the CLI's
    `config`, `inputs` and `version`: what `--from-summary` reruns)."""
    bars = result.bars
    out = dict(summarize(result, open_times))
    out.update({
        "symbol": result.symbol,
        "interval": bars[0].interval if bars else None,
        "strategy": result.strategy,
        "params": dict(result.params),
        "cash": float(result.cash),
        "commission": float(result.commission),
        "n_bars": len(bars),
        "first_bar": iso_utc(bars[0].open_time) if bars else None,
        "last_bar": iso_utc(bars[-1].open_time) if bars else None,
        "elapsed_s": result.elapsed_s,
        "open_position": _open_position(result),
    })
    out.update(extra or {})
    return _json_safe(out)


def write_report(result: ReplayResult, out_dir: Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write the four report files as one folder `out_dir` (see `ReportFolder`: all of them or none,
    an earlier report there replaced whole); returns report.html's path."""
    with ReportFolder(Path(out_dir)) as folder:
        write_files(result, folder.staging, extra)
        folder.commit()
    return Path(out_dir) / "report.html"


def write_files(result: ReplayResult, out_dir: Path, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the four report files into the existing folder `out_dir`; returns the summary."""
    out_dir = Path(out_dir)
    open_times = open_times_of(result.bars)  # once, for every file
    summary = build_summary(result, extra, open_times)
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    _write_trades(result.trades, out_dir / "trades.csv")
    _write_equity(result, out_dir / "equity.csv", open_times)
    (out_dir / "report.html").write_text(render_html(result, summary, open_times), encoding="utf-8")
    return summary


def _days_and_clocks(ms: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """An int64 array of Unix ms as its distinct UTC dates (YYYY-MM-DD), each element's date index,
    the distinct ms into the day and each element's index among them: a replay has few of either,
    so each is formatted once."""
    day, of_day = np.divmod(np.asarray(ms, dtype=np.int64), 86_400_000)
    days, day_at = np.unique(day, return_inverse=True)
    clocks, clock_at = np.unique(of_day, return_inverse=True)
    return np.datetime_as_string(days.astype("datetime64[D]")).tolist(), day_at, clocks, clock_at


def _iso_clocks(clocks: np.ndarray) -> list[str]:
    return [f"T{t // 3_600_000:02d}:{t // 60_000 % 60:02d}:{t // 1000 % 60:02d}"
            + (f".{t % 1000:03d}Z" if t % 1000 else "Z") for t in clocks.tolist()]


def iso_utc_array(ms: np.ndarray) -> list[str]:
    """`iso_utc` of each element of an int64 array of Unix ms, vectorized (`_iso_utc_strings`)."""
    times: list[str] = _iso_utc_strings(ms).to_pylist()
    return times


def _iso_utc_strings(ms: np.ndarray) -> pa.Array:
    """`iso_utc` of each element as an Arrow string array: each distinct date and clock formatted
    once, then taken and joined by Arrow."""
    dates, day_at, clocks, clock_at = _days_and_clocks(ms)
    # The separator as an array of empty strings: a Python "" or `pa.scalar` would import pandas.
    nothing = pa.Array.from_buffers(pa.large_string(), len(day_at),
                                    [None, pa.py_buffer(np.zeros(len(day_at) + 1, dtype=np.int64)), pa.py_buffer(b"")])
    return pc.binary_join_element_wise(pc.take(_strings(dates), _indices(day_at)),
                                       pc.take(_strings(_iso_clocks(clocks)), _indices(clock_at)), nothing)


def human_utc_array(ms: np.ndarray) -> list[str]:
    """`_human_utc` of each element of an int64 array of Unix ms, vectorized."""
    dates, day_at, clocks, clock_at = _days_and_clocks(ms)
    clock = [f" {t // 3_600_000:02d}:{t // 60_000 % 60:02d}" + (f":{t // 1000 % 60:02d}" if t % 60_000 else "")
             for t in clocks.tolist()]
    return [dates[d] + clock[c] for d, c in zip(day_at.tolist(), clock_at.tolist(), strict=True)]


def _strings(items: Sequence[str]) -> pa.Array:
    """Python strings as an Arrow large_string array, built from its buffers (`pa.array`'s first
    call imports pandas, see shared.data.klines._numpy)."""
    encoded = [s.encode("utf-8") for s in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    return pa.Array.from_buffers(pa.large_string(), len(encoded),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _indices(values: np.ndarray) -> pa.Array:
    a = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(a), [None, pa.py_buffer(a)])


def _write_trades(trades: Sequence[ClosedTrade], path: Path) -> None:
    times = iso_utc_array(np.array([(t.entry_time, t.exit_time) for t in trades], dtype=np.int64).ravel())
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRADE_COLUMNS)
        for i, t in enumerate(trades):
            w.writerow((times[2 * i], times[2 * i + 1], repr(float(t.entry_price)), repr(float(t.exit_price)),
                        repr(float(t.size)), repr(float(t.pnl)), repr(float(t.return_pct))))


def _write_equity(result: ReplayResult, path: Path, open_times: np.ndarray | None = None) -> None:
    """time,equity per bar, built and written by Arrow: the times from their distinct dates and
    clocks, the equity as `repr` (full precision, `repr_float_array`)."""
    ms = open_times_of(result.bars) if open_times is None else open_times
    if len(ms) != len(result.equity):
        raise ValueError("bars and equity differ in length")
    table = pa.Table.from_arrays([_iso_utc_strings(ms), repr_float_array(result.equity)], names=list(EQUITY_COLUMNS))
    with path.open("wb") as fh:
        fh.write((",".join(EQUITY_COLUMNS) + "\n").encode("utf-8"))
        pa_csv.write_csv(table, fh, pa_csv.WriteOptions(include_header=False, quoting_style="none"))


def repr_float_array(values: Sequence[float]) -> pa.Array:
    """`repr` of each value (full precision) as an Arrow string array, formatting each run of equal
    values once: an equity curve repeats its value on every bar without a position. Values are
    compared by their bits, so -0.0 and 0.0 stay distinct.

    The distinct values are formatted by Arrow's float-to-string cast, the same shortest digits
    that round-trip (3-4x faster than `repr` per value), where its notation is also repr's: a value
    with a fraction and 1e-4 <= |v| < 1e10 (a test holds it to `repr` on 850,027 values).
    Elsewhere (whole numbers, which Arrow writes without ".0", tiny or huge magnitudes, where the
    two switch to exponents at other points, inf, nan) it is `repr` itself."""
    bits = np.asarray(values, dtype=np.float64).view(np.int64)
    if not len(bits):
        return _strings([])
    starts = np.concatenate(([0], np.flatnonzero(bits[1:] != bits[:-1]) + 1))
    distinct = bits[starts].view(np.float64)
    # from_buffers, not pa.array: the latter's first call imports pandas (see shared.data.klines._numpy)
    text = pa.Array.from_buffers(pa.float64(), len(distinct), [None, pa.py_buffer(distinct)]).cast(pa.large_string())
    with np.errstate(invalid="ignore"):
        mag = np.abs(distinct)
        arrow_is_repr = (mag >= 1e-4) & (mag < 1e10) & (distinct != np.floor(distinct))
    others = np.flatnonzero(~arrow_is_repr)
    if len(others):
        mask = pa.Array.from_buffers(pa.bool_(), len(distinct),
                                     [None, pa.py_buffer(np.packbits(~arrow_is_repr, bitorder="little"))])
        text = pc.replace_with_mask(text, mask, _strings([repr(float(v)) for v in distinct[others].tolist()]))
    run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(bits))))
    return pc.take(text, _indices(run))


# -- HTML ------------------------------------------------------------------------------------

def _num(v: float | None, decimals: int = 2, suffix: str = "", sign: bool = False) -> str:
    """Grouped fixed-point; from 1e7 on, four significant digits so a card or cell stays narrow."""
    if v is None or not math.isfinite(v):
        return "–"
    if abs(v) >= 1e7:
        return (f"{v:+.4g}" if sign else f"{v:.4g}") + suffix
    return f"{v:+,.{decimals}f}{suffix}" if sign else f"{v:,.{decimals}f}{suffix}"


def _qty(v: float) -> str:
    """A base quantity: satoshi precision, or significant digits once it is huge."""
    return f"{v:.8f}" if abs(v) < 1e6 else f"{v:.6g}"


def _price_decimals(v: float) -> int:
    """Six significant digits, at least two decimals: 7,180.60 and 0.234500 both read right."""
    if v <= 0 or not math.isfinite(v):
        return 2
    return max(2, min(8, 5 - math.floor(math.log10(v))))


def _cls(v: float) -> str:
    return "pos" if v > 0 else "neg" if v < 0 else ""


def _card(label: str, value: str, cls: str = "") -> str:
    c = f' class="v {cls}"' if cls else ' class="v"'
    return f'<div class="card"><div class="k">{escape(label)}</div><div{c}>{escape(value)}</div></div>'


_SI = ((1e12, "T"), (1e9, "B"), (1e6, "M"))


def _axis_number(v: float, decimals: int) -> str:
    """Axis label: grouped digits below a million, then M/B/T, then exponent (fits the margin)."""
    a = abs(v)
    if a >= 1e15:
        return f"{v:.3g}"
    for unit, suffix in _SI:
        if a >= unit:
            return f"{v / unit:.3g}{suffix}"
    return f"{v:,.{decimals}f}"


def _axis_pct(v: float, decimals: int) -> str:
    return f"{v:,.{decimals}f} %"


def render_html(result: ReplayResult, summary: Mapping[str, Any] | None = None,
                open_times: np.ndarray | None = None) -> str:
    """The self-contained HTML report (inline CSS and SVG only)."""
    times = open_times_of(result.bars) if open_times is None else open_times
    s = dict(summary) if summary is not None else build_summary(result, None, times)
    bars = result.bars
    symbol = result.symbol
    interval = bars[0].interval if bars else ""
    params = ", ".join(f"{k}={v}" for k, v in result.params.items()) or "defaults"
    x_range = (int(times[0]), int(times[-1])) if len(times) else (0, 1)
    spans = trade_bars(bars, result.trades, times)
    when = _trade_times(result.trades)

    ret = s["return_pct"]
    cards = [
        _card("Return", _num(ret, 2, " %", sign=True), _cls(ret)),
        _card("Final equity", _num(s["equity_final"], 2)),
        _card("Max drawdown", _num(s["max_drawdown_pct"], 2, " %"), "neg" if s["max_drawdown_pct"] else ""),
        _card("Closed trades", f"{s['n_trades']:,}"),
        _card("Win rate", _num(s["win_rate_pct"], 1, " %")),
        _card("Exposure", _num(s["exposure_pct"], 1, " %")),
        _card("Commissions", _num(s["commissions"], 2)),
        _card("Events", f"{s['events']:,}"),
    ]
    rejections = ", ".join(f"{escape(k)} {v:,}" for k, v in s["rejections"].items()) or "none"
    eps = s.get("events_per_s")
    meta = [
        f"<b>{escape(symbol)} {escape(interval)}</b>, {len(bars):,} bars",
        f"cash <b>{_num(result.cash, 2)}</b>",
        f"commission <b>{result.commission * 100:g} %</b> per side",
        f"{_num(eps, 0)} events/s" if eps is not None else "",
        f"risk rejections: {rejections}",
        f"reduced: {s['reduced']:,}",
    ]
    op = s.get("open_position")
    open_note = ""
    if op and result.open_position is not None:
        open_note = (
            f'<p class="open"><b>Position open at the end</b>: {_qty(op["size"])} {escape(symbol)} since '
            f"{escape(_human_utc(result.open_position.entry_time))} UTC at "
            f"{_num(op['entry_price'], _price_decimals(op['entry_price']))}, "
            f"{_num(op['unrealized_pnl'], 2, sign=True)} at the last close. It is in the final equity and "
            "the return, not in the trades, win rate, exposure or commissions.</p>")

    equity_svg, drawdown_svg, price_svg = _charts(result, x_range, times, spans, when)
    page = Template(resources.files("shared.report").joinpath("template.html").read_text(encoding="utf-8"))
    title = f"{symbol} {interval} {result.strategy} — MarketFlow replay"
    first = _human_utc(int(times[0])) if len(times) else ""
    last = _human_utc(int(times[-1])) if len(times) else ""
    return page.substitute(
        title=escape(title),
        heading=escape(f"{symbol} {interval} · {result.strategy} ({params})"),
        subtitle=escape(f"Replay {first} → {last} UTC (bar open times)"),
        cards="\n".join(cards),
        meta=" · ".join(m for m in meta if m),
        open_note=open_note,
        equity_svg=equity_svg,
        drawdown_svg=drawdown_svg,
        price_svg=price_svg,
        price_note=("▲ entry fill and ▼ exit fill, at the fill bar's open; green: the trade won after "
                    "commissions, red: it lost" + ("; blue: the position still open at the end" if op else "")
                    + ". Hover a marker for its details."),
        trades_table=_trades_table(result, spans, when),
        config=_config_html(s),
        footer=("MarketFlow · times in UTC · equity marked at each bar's close · figures follow "
                "backtesting.py 0.6.6's definitions (shared/report/metrics.py)"),
    )


def _trade_times(trades: Sequence[ClosedTrade]) -> list[str]:
    """`_human_utc` of each trade's entry and exit, in that order (the chart's markers and the
    table show each twice)."""
    return human_utc_array(np.array([(t.entry_time, t.exit_time) for t in trades], dtype=np.int64).ravel())


def _charts(result: ReplayResult, x_range: tuple[int, int], times: np.ndarray,
            spans: list[tuple[int, int]], when: Sequence[str]) -> tuple[str, str, str]:
    bars = result.bars
    closes = np.fromiter(map(attrgetter("close"), bars), dtype=np.float64, count=len(bars))
    cash = result.cash
    curve = np.asarray(result.equity, dtype=np.float64)
    series = [Series("Strategy equity", times, curve, _EQUITY, width=1.8)]
    if len(closes) and closes[0] > 0:
        base = closes[0]
        series.insert(0, Series("Buy & hold", times, cash * closes / base, _BUYHOLD, width=1.2))
    series.insert(0, Series("", [x_range[0], x_range[1]], [cash, cash], "#cbd2d9", width=1, dash="4 4"))
    equity = Chart("equity", "Equity (quote, marked at close)", series, x_range, _axis_number, height=330)

    dd = drawdown_pct(curve)
    lo = float(dd.min()) if len(dd) else 0.0
    drawdown = Chart("drawdown", "Drawdown from peak (%)",
                     [Series("", times, dd, _DD, width=1.2, fill_to=0.0, fill_opacity=0.22)],
                     x_range, _axis_pct, height=200, y_range=(lo if lo < 0 else -1.0, 0.0), snap=True)

    markers: list[Marker] = []
    segments: list[Segment] = []
    for n, (t, (eb, xb)) in enumerate(zip(result.trades, spans, strict=True), 1):
        color = _WIN if t.pnl > 0 else _LOSS
        d = _price_decimals(t.entry_price)
        info = (f"#{n} {when[2 * n - 2]} → {when[2 * n - 1]} ({xb - eb} bars), "
                f"size {_qty(t.size)}, {t.entry_price:,.{d}f} → {t.exit_price:,.{d}f}, "
                f"PnL {_num(t.pnl, 2, sign=True)} ({t.return_pct * 100:+.2f} %)")
        segments.append(Segment(t.entry_time, t.entry_price, t.exit_time, t.exit_price, color))
        markers.append(Marker(t.entry_time, t.entry_price, color, True, "entry " + info))
        markers.append(Marker(t.exit_time, t.exit_price, color, False, "exit " + info))
    pos = result.open_position
    legend: list[tuple[str, str, str]] = [("Win", _WIN, "up"), ("Loss", _LOSS, "up")]
    if pos is not None and pos.qty > 0:
        ep = _entry_price(pos)
        markers.append(Marker(pos.entry_time, ep, _OPEN, True,
                              f"open: entry {_human_utc(pos.entry_time)} @ {ep:,.{_price_decimals(ep)}f}, "
                              f"size {_qty(pos.qty)}, {_num(pos.unrealized, 2, sign=True)} at the last close"))
        legend.append(("Open", _OPEN, "up"))
    price = Chart("price", f"{result.symbol} close with trades", [Series("Close", times, closes, _PRICE, width=1.1)],
                  x_range, _axis_number, height=400, markers=markers, segments=segments, legend_extra=legend)
    return equity.render(), drawdown.render(), price.render()


def _config_html(s: Mapping[str, Any]) -> str:
    """The run's configuration and inputs (summary.json's `config` and `inputs`), as tables."""
    config = s.get("config")
    if not isinstance(config, Mapping):
        return '<p class="note">No configuration recorded (written by the library, not the CLI).</p>'
    params = ", ".join(f"{k}={v}" for k, v in (config.get("params") or {}).items()) or "defaults"
    rows = [("strategy", f"{config.get('strategy')} ({params})", ""), ("cash", str(config.get("cash")), ""),
            ("commission", str(config.get("commission")), ""), ("fee mode", str(config.get("fee_mode")), "")]
    rows += [(f"risk.{key}", json.dumps(item.get("value")), str(item.get("source", "")))
             for key, item in (config.get("risk") or {}).items()]
    body = "\n".join(f'<tr><td class="t">{escape(k)}</td><td class="t">{escape(v)}</td>'
                     f'<td class="t">{escape(src)}</td></tr>' for k, v, src in rows)
    out = ['<div class="scroll"><table>\n<thead><tr><th class="t">Setting</th><th class="t">Value</th>'
           '<th class="t">From</th></tr></thead>\n<tbody>\n' + body + "\n</tbody>\n</table></div>"]
    inputs = s.get("inputs") or []
    if inputs:
        irows = "\n".join(
            f'<tr><td class="t">{escape(str(i.get("path")))}</td><td class="t"><code>'
            f'{escape(str(i.get("sha256"))[:16])}…</code></td><td>{i.get("rows", 0):,}</td>'
            f'<td class="t">{escape(str(i.get("first_bar")))}</td><td class="t">{escape(str(i.get("last_bar")))}</td>'
            "</tr>" for i in inputs)
        out.append('<div class="scroll" style="margin-top:10px"><table>\n<thead><tr><th class="t">Input</th>'
                   '<th class="t">sha256</th><th>Rows</th><th class="t">First</th><th class="t">Last</th></tr>'
                   "</thead>\n<tbody>\n" + irows + "\n</tbody>\n</table></div>")
    version = s.get("version")
    if version:
        out.append(f'<p class="note">MarketFlow {escape(str(version))}. Rerun: '
                   "<code>marketflow replay --from-summary summary.json --out DIR</code></p>")
    return "\n".join(out)


def _trades_table(result: ReplayResult, spans: list[tuple[int, int]], when: Sequence[str]) -> str:
    trades = result.trades
    if not trades:
        return '<p class="note">No closed trades.</p>'

    head = ("<tr><th>#</th><th class=\"t\">Entry (UTC)</th><th class=\"t\">Exit (UTC)</th><th>Bars</th>"
            "<th>Entry price</th><th>Exit price</th><th>Size</th><th>PnL</th><th>Return</th>"
            "<th>Commission</th></tr>")
    rows: list[str] = []
    for n, (t, (eb, xb)) in enumerate(zip(trades, spans, strict=True), 1):
        if n > MAX_TABLE_ROWS:
            break
        d = _price_decimals(t.entry_price)
        c = _cls(t.pnl)
        rows.append(
            f"<tr><td>{n}</td><td class=\"t\">{when[2 * n - 2]}</td>"
            f"<td class=\"t\">{when[2 * n - 1]}</td><td>{xb - eb}</td>"
            f"<td>{t.entry_price:,.{d}f}</td><td>{t.exit_price:,.{d}f}</td><td>{_qty(t.size)}</td>"
            f"<td class=\"{c}\">{_num(t.pnl, 2, sign=True)}</td><td class=\"{c}\">{t.return_pct * 100:+.2f} %</td>"
            f"<td>{_num(t.commission, 2)}</td></tr>")
    more = ""
    if len(trades) > MAX_TABLE_ROWS:
        more = (f'<p class="note">First {MAX_TABLE_ROWS:,} of {len(trades):,} trades shown; '
                "trades.csv lists them all.</p>")
    return ('<div class="scroll"><table>\n<thead>' + head + "</thead>\n<tbody>\n" + "\n".join(rows)
            + "\n</tbody>\n</table></div>" + more)
