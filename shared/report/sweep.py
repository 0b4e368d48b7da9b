"""A parameter sweep's output folder: results.csv, results.json and heatmap.html.

One row per grid combination: the replay's summary figures (`summarize`, the same numbers a
`marketflow replay` with those parameters writes to summary.json), or the reason the strategy
refused the combination. Rows are sorted by the chosen metric, best (highest) first, ties in grid
order, refused combinations last. No figure depends on timing, so the same sweep gives the same
files whatever the number of worker processes. The HTML is one file with no scripts, styled by the
replay report's stylesheet (template.html).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from .writer import _json_safe, _num

#: The files a sweep folder holds (see ReportFolder).
SWEEP_FILES = frozenset({"results.csv", "results.json", "heatmap.html"})
#: The summary figures each row carries, in column order (`summarize` without timing).
FIGURES: tuple[str, ...] = ("return_pct", "equity_final", "n_trades", "win_rate_pct", "max_drawdown_pct",
                            "exposure_pct", "commissions", "events", "reduced")
#: Figures `--metric` can sort by.
METRICS: tuple[str, ...] = tuple(k for k in FIGURES if k not in ("events",))


class SweepRow(NamedTuple):
    """One combination's outcome: `figures` when it ran, `reason` when the strategy refused it."""

    position: int                      # position in grid order
    params: dict[str, int | float]     # the grid values of this combination
    figures: dict[str, Any] | None     # FIGURES and `rejections`, from `summarize`
    reason: str | None


def figures_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The row's figures from a `summarize` result (timing left out)."""
    out = {k: summary[k] for k in FIGURES}
    out["rejections"] = dict(summary["rejections"])
    return out


def ranked(rows: Sequence[SweepRow], metric: str) -> list[SweepRow]:
    """Rows that ran, best `metric` first (NaN last, ties in grid order), then refused ones."""
    ran = [r for r in rows if r.figures is not None]
    refused = sorted((r for r in rows if r.figures is None), key=lambda r: r.position)

    def key(r: SweepRow) -> tuple[int, float, int]:
        v = float(r.figures[metric]) if r.figures is not None else math.nan
        return (1, 0.0, r.position) if math.isnan(v) else (0, -v, r.position)

    return sorted(ran, key=key) + refused


def write_sweep(rows: Sequence[SweepRow], out_dir: Path, *, names: Sequence[str], metric: str,
                meta: Mapping[str, Any]) -> None:
    """Write the three files into the existing folder `out_dir`; `rows` in ranked order, `names`
    the grid parameters in grid order, `meta` the sweep's configuration and inputs."""
    out_dir = Path(out_dir)
    doc = {**meta, "metric": metric, "grid": list(names), "combinations": len(rows),
           "refused": sum(1 for r in rows if r.figures is None),
           "results": [{"rank": i + 1, "params": r.params, "status": "ok" if r.figures else "refused",
                        **(r.figures or {}), "reason": r.reason} for i, r in enumerate(rows)]}
    (out_dir / "results.json").write_text(json.dumps(_json_safe(doc), indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
    with (out_dir / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("rank", *names, "status", *FIGURES, "rejections", "reason"))
        for i, r in enumerate(rows, 1):
            f = r.figures or {}
            w.writerow((i, *(r.params[n] for n in names), "ok" if r.figures else "refused",
                        *(_csv_value(f.get(k)) for k in FIGURES),
                        ";".join(f"{k}={v}" for k, v in (f.get("rejections") or {}).items()), r.reason or ""))
    (out_dir / "heatmap.html").write_text(render_heatmap(rows, names=names, metric=metric, meta=meta),
                                          encoding="utf-8")


def _csv_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def _stylesheet() -> str:
    """The replay report's <style> block, so both pages look alike from one stylesheet."""
    page = resources.files("shared.report").joinpath("template.html").read_text(encoding="utf-8")
    found = re.search(r"<style>.*?</style>", page, re.S)
    return found.group(0) if found else ""


def _color(v: float, lo: float, hi: float) -> str:
    """Green above 0 and red below when the values straddle 0 (stronger further out); else a blue
    ramp from the lowest to the highest value."""
    if lo < 0 < hi:
        top = max(-lo, hi)
        a = min(1.0, abs(v) / top) if top else 0.0
        base = (21, 128, 61) if v > 0 else (220, 38, 38) if v < 0 else (255, 255, 255)
    else:
        a = (v - lo) / (hi - lo) if hi > lo else 0.5
        a = 0.12 + 0.78 * a
        base = (37, 99, 235)
    r, g, b = (round(255 + (c - 255) * a * 0.85) for c in base)
    return f"#{r:02x}{g:02x}{b:02x}"


def _cells(rows: Sequence[SweepRow], x: str, y: str | None,
           metric: str) -> dict[tuple[Any, Any], tuple[float | None, SweepRow]]:
    """(x value, y value) -> the best metric among combinations there (other grid parameters vary)
    and its row; a cell where every combination was refused holds None and a refused row."""
    cells: dict[tuple[Any, Any], tuple[float | None, SweepRow]] = {}
    for r in rows:
        k = (r.params[x], r.params[y] if y else None)
        v = None if r.figures is None else float(r.figures[metric])
        if v is not None and math.isnan(v):
            v = None
        old = cells.get(k)
        if (old is None or (v is not None and (old[0] is None or v > old[0]))
                or (old[0] is None and old[1].figures is None and r.figures is not None)):
            cells[k] = (v, r)
    return cells


def render_heatmap(rows: Sequence[SweepRow], *, names: Sequence[str], metric: str, meta: Mapping[str, Any],
                   top: int = 20) -> str:
    """heatmap.html: the metric over the first two grid parameters (the best over any others), and
    the best `top` rows."""
    x = names[0]
    y = names[1] if len(names) > 1 else None
    cells = _cells(rows, x, y, metric)
    xs = sorted({k[0] for k in cells})
    ys = sorted({k[1] for k in cells}, key=lambda v: (v is None, v))
    values = [v for v, _ in cells.values() if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
    config = meta.get("config", {})
    head = "".join(f"<th>{escape(x)}={escape(str(v))}</th>" for v in xs)
    body = []
    for yv in ys:
        tds = []
        for xv in xs:
            v, r = cells.get((xv, yv), (None, None))
            if r is None:
                tds.append('<td class="t"></td>')
            elif v is None:
                why = r.reason or f"{metric} undefined (no closed trade)"
                tds.append(f'<td style="background:#e4e7eb;color:#616e7c" title="{escape(why)}">'
                           f'{"refused" if r.figures is None else "–"}</td>')
            else:
                p = ", ".join(f"{k}={val}" for k, val in r.params.items())
                tds.append(f'<td style="background:{_color(v, lo, hi)}" title="{escape(p)}: {metric} {v!r}">'
                           f"{escape(_num(v, 2))}</td>")
        label = f"{escape(y)}={escape(str(yv))}" if y else escape(metric)
        body.append(f'<tr><th class="t">{label}</th>{"".join(tds)}</tr>')
    others = list(names[2:])
    note = (f"Each cell: the best {escape(metric)} over {', '.join(map(escape, others))}. " if others else "")
    ranked_rows = []
    for i, r in enumerate(rows[:top], 1):
        p = ", ".join(f"{k}={v}" for k, v in r.params.items())
        if r.figures is None:
            ranked_rows.append(f'<tr><td>{i}</td><td class="t">{escape(p)}</td>'
                               f'<td class="t" colspan="5">refused: {escape(r.reason or "")}</td></tr>')
            continue
        f = r.figures
        ranked_rows.append(
            f'<tr><td>{i}</td><td class="t">{escape(p)}</td><td>{_num(f["return_pct"], 2, " %", sign=True)}</td>'
            f'<td>{f["n_trades"]:,}</td><td>{_num(f["win_rate_pct"], 1, " %")}</td>'
            f'<td>{_num(f["max_drawdown_pct"], 2, " %")}</td><td>{_num(f["exposure_pct"], 1, " %")}</td></tr>')
    n_refused = sum(1 for r in rows if r.figures is None)
    inputs = ", ".join(escape(Path(str(i.get("path"))).name) for i in meta.get("inputs", []))
    title = f"{config.get('symbol', '')} {config.get('strategy', '')} sweep — MarketFlow"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
{_stylesheet()}
</head>
<body>
<main>
<h1>{escape(str(config.get('symbol', '')))} · {escape(str(config.get('strategy', '')))} sweep</h1>
<p class="sub">{len(rows):,} combinations of {', '.join(map(escape, names))} ({n_refused:,} refused by the
strategy) · cash {_num(float(config.get('cash', 0)), 2)} · commission {float(config.get('commission', 0)) * 100:g} %
per side · {inputs}</p>
<h2>{escape(metric)} by {escape(x)}{f" and {escape(y)}" if y else ""}</h2>
<div class="scroll"><table>
<thead><tr><th class="t"></th>{head}</tr></thead>
<tbody>
{chr(10).join(body)}
</tbody>
</table></div>
<p class="note">{note}Grey: refused by the strategy (hover for the reason) or the figure is undefined.
Hover a cell for its parameters.</p>
<h2>Best {min(top, len(rows))} by {escape(metric)}</h2>
<div class="scroll"><table>
<thead><tr><th>#</th><th class="t">Parameters</th><th>Return</th><th>Trades</th><th>Win rate</th>
<th>Max drawdown</th><th>Exposure</th></tr></thead>
<tbody>
{chr(10).join(ranked_rows)}
</tbody>
</table></div>
<footer>MarketFlow · every combination replayed through the same pipeline as <code>marketflow replay</code>
· results.csv and results.json list every combination</footer>
</main>
</body>
</html>
"""
