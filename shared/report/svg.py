"""Inline SVG time-series charts for the HTML report, in plain Python.

The report must open offline, from a file, on a machine without our Python packages: no chart
library, no script, no CDN. So the charts are static SVG written here. Long series are cut to a
min and max per pixel column (numpy), which keeps the file small while every spike (a
flash crash, the deepest drawdown) still shows at its true height.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

import numpy as np

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Tick steps under a month, in ms; months and years are calendar steps (see `time_ticks`).
_FIXED_STEPS = (
    MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS,
    HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, DAY_MS, 2 * DAY_MS, 7 * DAY_MS,
    14 * DAY_MS,
)
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120)


def utc(ms: int) -> datetime:
    """A UTC datetime of Unix ms, exact (no float division)."""
    return _EPOCH + timedelta(milliseconds=ms)


def _extremes(ys: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per bucket (`starts`: the sorted first index of each, the first 0), the index of its first
    minimum and of its first maximum; sorted, each index once."""
    mins = np.minimum.reduceat(ys, starts)
    maxs = np.maximum.reduceat(ys, starts)
    bucket = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(ys))))
    picked = []
    for extreme in (mins, maxs):
        hits = np.flatnonzero(ys == extreme[bucket])
        _, first = np.unique(bucket[hits], return_index=True)
        picked.append(hits[first])
    return np.unique(np.concatenate(picked))


def downsample(xs: Sequence[float], ys: Sequence[float], target: int = 2000) -> tuple[list[float], list[float]]:
    """At most about `target` points: the min and the max of each of equal-count buckets, in
    their order (first and last points always kept, so the line spans the whole axis).

    Averaging or striding would hide a one-bar spike; keeping both extremes of each bucket draws
    the same envelope as the full series at screen resolution.
    """
    n = len(xs)
    if n != len(ys):
        raise ValueError("xs and ys differ in length")
    if n <= target or target < 4:
        return list(xs), list(ys)
    buckets = (target - 2) // 2
    starts = np.unique((n - 2) * np.arange(buckets) // buckets)
    inner = _extremes(np.asarray(ys, dtype=np.float64)[1:n - 1], starts) + 1
    keep = np.concatenate(([0], inner, [n - 1]))
    return np.asarray(xs)[keep].tolist(), np.asarray(ys)[keep].tolist()


def pixel_envelope(xs: np.ndarray, ys: np.ndarray, x0: float, x1: float,
                   columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The points of a time-ordered series the browser needs at `columns` pixel columns across
    [x0, x1]: in each column its minimum and maximum (so no spike is lost), plus the first and
    last points. A series no longer than two points a column is returned as it is."""
    n = len(xs)
    if n <= 2 * columns or n < 3:
        return xs, ys
    col = ((xs - x0) * (columns / (x1 - x0))).astype(np.int64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(col)) + 1))
    keep = np.union1d(_extremes(ys, starts), [0, n - 1])
    return xs[keep], ys[keep]


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 x 10^k) covering [lo, hi], about `count` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) * 0.01 or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v = first + len(ticks) * step
    return ticks


def tick_decimals(ticks: Sequence[float]) -> int:
    """Decimals that show every tick distinctly (the step's magnitude), at most 8."""
    if len(ticks) < 2:
        return 2
    step = abs(ticks[1] - ticks[0])
    return max(0, min(8, -math.floor(math.log10(step) + 1e-9)))


def _add_months(d: datetime, months: int) -> datetime:
    m = d.month - 1 + months
    return d.replace(year=d.year + m // 12, month=m % 12 + 1, day=1)


def time_ticks(t0: int, t1: int, count: int = 8) -> tuple[list[int], Callable[[int, int | None], tuple[str, str]]]:
    """Tick times (ms UTC) at round clock or calendar times, and a labeller for them.

    The labeller returns (main line, context line): the context (date under a time, year under a
    date) is only given when it changes from the previous tick, so the axis stays readable.
    """
    span = max(t1 - t0, 1)
    fixed = next((s for s in _FIXED_STEPS if span / s <= count), None)
    ticks: list[int] = []
    if fixed is not None:
        # Align day and longer steps to UTC midnight; weeks to Monday (the epoch is a Thursday).
        offset = 4 * DAY_MS if fixed % (7 * DAY_MS) == 0 else 0
        t = ((t0 - offset) // fixed) * fixed + offset
        if t < t0:
            t += fixed
        while t <= t1:
            ticks.append(t)
            t += fixed
        step = fixed
    else:
        months = next((m for m in _MONTH_STEPS if span / (m * 30 * DAY_MS) <= count), _MONTH_STEPS[-1])
        d0 = utc(t0)
        d = d0.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        while d < d0 or (d.month - 1) % months:
            d = _add_months(d, 1)
        end = utc(t1)
        while d <= end:
            ticks.append((d - _EPOCH) // timedelta(milliseconds=1))
            d = _add_months(d, months)
        step = months * 30 * DAY_MS

    def label(t: int, prev: int | None) -> tuple[str, str]:
        d = utc(t)
        p = utc(prev) if prev is not None else None
        if step < DAY_MS:
            ctx = d.strftime("%b %d") if p is None or p.date() != d.date() else ""
            return d.strftime("%H:%M"), ctx
        if step < 28 * DAY_MS:
            ctx = str(d.year) if p is None or p.year != d.year else ""
            return d.strftime("%b %d"), ctx
        ctx = str(d.year) if p is None or p.year != d.year else ""
        return d.strftime("%b"), ctx

    return ticks, label


@dataclass
class Series:
    """One line (optionally filled down to `fill_to`) of a chart."""

    name: str
    xs: Sequence[float] | np.ndarray
    ys: Sequence[float] | np.ndarray
    color: str
    width: float = 1.5
    dash: str = ""
    fill_to: float | None = None
    fill_opacity: float = 0.18


@dataclass
class Marker:
    """A point marker: a triangle pointing up (entry) or down (exit), with a hover title."""

    x: float
    y: float
    color: str
    up: bool
    title: str = ""


@dataclass
class Segment:
    """A thin line between two points (an entry and its exit)."""

    x0: float
    y0: float
    x1: float
    y1: float
    color: str


@dataclass
class Chart:
    """A time-series panel: x is ms UTC, y is formatted by `y_format(value, decimals)`."""

    chart_id: str
    title: str
    series: list[Series]
    x_range: tuple[int, int]
    y_format: Callable[[float, int], str]
    width: int = 1200
    height: int = 320
    markers: list[Marker] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    y_range: tuple[float, float] | None = None
    legend_extra: list[tuple[str, str, str]] = field(default_factory=list)  # (label, color, "up"/"down"/"line")
    margin: tuple[int, int, int, int] = (34, 24, 46, 88)  # top, right, bottom, left
    snap: bool = False  # widen the y range to whole tick steps (for a 0-anchored drawdown)

    def render(self) -> str:
        """The chart as an <svg> element string."""
        top, right, bottom, left = self.margin
        w, h = self.width, self.height
        pw, ph = w - left - right, h - top - bottom
        t0, t1 = self.x_range
        if t1 <= t0:
            t1 = t0 + 1
        # A little room at both ends, so a marker on the first or last bar is not cut in half.
        pad = (t1 - t0) * 0.008
        x0, x1 = t0 - pad, t1 + pad
        lo, hi = self.y_range or _y_extent(self.series, self.markers)
        ticks = nice_ticks(lo, hi)
        if self.snap and len(ticks) >= 2:
            # Snap the range out to whole tick steps, so the extremes sit between labelled lines.
            step = ticks[1] - ticks[0]
            if ticks[0] - lo > step * 1e-9:
                ticks.insert(0, ticks[0] - step)
            if hi - ticks[-1] > step * 1e-9:
                ticks.append(ticks[-1] + step)
            lo, hi = ticks[0], ticks[-1]
        if hi <= lo:
            hi = lo + 1.0

        def sx(x: float) -> float:
            return left + (x - x0) / (x1 - x0) * pw

        def sy(y: float) -> float:
            return top + (hi - y) / (hi - lo) * ph

        cid = escape(self.chart_id, quote=True)
        out: list[str] = [
            f'<svg class="chart" id="{cid}" viewBox="0 0 {w} {h}" width="100%" role="img" '
            f'aria-label="{escape(self.title, quote=True)}" xmlns="http://www.w3.org/2000/svg">',
            f'<defs><clipPath id="{cid}-clip"><rect x="{left}" y="{top}" width="{pw}" height="{ph}"/>'
            "</clipPath></defs>",
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot"/>',
            f'<text x="{left}" y="{top - 12}" class="title">{escape(self.title)}</text>',
        ]
        # y grid and labels
        decimals = tick_decimals(ticks)
        for v in ticks:
            y = sy(v)
            if top - 0.5 <= y <= top + ph + 0.5:
                out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
                out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" class="ylab">'
                           f"{escape(self.y_format(v, decimals))}</text>")
        # x grid and labels
        tts, label = time_ticks(t0, t1)
        prev: int | None = None
        for t in tts:
            x = sx(t)
            main, ctx = label(t, prev)
            prev = t
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" class="grid"/>')
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 5}" class="axis"/>')
            out.append(f'<text x="{x:.1f}" y="{top + ph + 19}" class="xlab">{escape(main)}</text>')
            if ctx:
                out.append(f'<text x="{x:.1f}" y="{top + ph + 35}" class="xlab ctx">{escape(ctx)}</text>')
        out.append(f'<g clip-path="url(#{cid}-clip)">')
        for s in self.series:
            if not len(s.xs):
                continue
            xs, ys = pixel_envelope(np.asarray(s.xs, dtype=np.float64), np.asarray(s.ys, dtype=np.float64),
                                    x0, x1, pw)
            px = (left + (xs - x0) / (x1 - x0) * pw).tolist()  # sx and sy, on arrays
            py = (top + (hi - ys) / (hi - lo) * ph).tolist()
            pts = " ".join([f"{x:.1f},{y:.1f}" for x, y in zip(px, py, strict=True)])
            if s.fill_to is not None:
                base = sy(s.fill_to)
                area = f"M{px[0]:.1f},{base:.1f} L{pts} L{px[-1]:.1f},{base:.1f} Z"
                out.append(f'<path d="{area}" fill="{s.color}" fill-opacity="{s.fill_opacity}" stroke="none"/>')
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{s.color}" stroke-width="{s.width}"'
                       f' stroke-linejoin="round"{dash}/>')
        for g in self.segments:
            out.append(f'<line x1="{sx(g.x0):.1f}" y1="{sy(g.y0):.1f}" x2="{sx(g.x1):.1f}" y2="{sy(g.y1):.1f}" '
                       f'stroke="{g.color}" stroke-width="1.2" stroke-opacity="0.7"/>')
        # Smaller markers when trades are dense, so neighbouring trades stay apart.
        size = 5.5 if len(self.markers) <= 120 else 4.5 if len(self.markers) <= 600 else 3.5
        for m in self.markers:
            out.append(_triangle(sx(m.x), sy(m.y), m.up, m.color, m.title, size))
        out.append("</g>")
        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
        out.append(self._legend(left + pw, top - 12))
        out.append("</svg>")
        return "\n".join(out)

    def _legend(self, right_x: float, y: float) -> str:
        items: list[tuple[str, str, str]] = [(s.name, s.color, "line") for s in self.series if s.name]
        items += self.legend_extra
        parts: list[str] = []
        x = right_x
        for name, color, kind in reversed(items):
            text_w = 7.0 * len(name)
            x -= text_w
            parts.append(f'<text x="{x:.1f}" y="{y}" class="legend">{escape(name)}</text>')
            if kind == "line":
                parts.append(f'<line x1="{x - 22:.1f}" x2="{x - 6:.1f}" y1="{y - 4}" y2="{y - 4}" '
                             f'stroke="{color}" stroke-width="2.5"/>')
            else:
                up = kind == "up"
                parts.append(_triangle(x - 12, y - 4 - 5 if up else y - 4 + 5, up, color, "", 5.0))
            x -= 34
        return "".join(parts)


def _triangle(x: float, y: float, up: bool, color: str, title: str, s: float = 5.5) -> str:
    """A triangle with its tip on (x, y): entries point up from below, exits down from above."""
    if up:
        d = f"M{x:.1f},{y:.1f} L{x - s:.1f},{y + 2 * s:.1f} L{x + s:.1f},{y + 2 * s:.1f} Z"
    else:
        d = f"M{x:.1f},{y:.1f} L{x - s:.1f},{y - 2 * s:.1f} L{x + s:.1f},{y - 2 * s:.1f} Z"
    tip = f"<title>{escape(title)}</title>" if title else ""
    return f'<path d="{d}" fill="{color}" stroke="#fff" stroke-width="0.8">{tip}</path>'


def _y_extent(series: Sequence[Series], markers: Sequence[Marker]) -> tuple[float, float]:
    values = [m.y for m in markers if math.isfinite(m.y)]
    values += [s.fill_to for s in series if s.fill_to is not None]
    for s in series:
        ys = np.asarray(s.ys, dtype=np.float64)
        ys = ys[np.isfinite(ys)]
        if len(ys):
            values += [float(ys.min()), float(ys.max())]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.04 or abs(hi) * 0.01 or 1.0
    return lo - pad, hi + pad
