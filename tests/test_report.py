"""shared.report on hand-made results: each figure's definition, the files, the HTML, the charts."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.market import Bar
from shared.pipeline.replay import ReplayResult
from shared.portfolio import ClosedTrade, Position
from shared.report import SUMMARY_KEYS, summarize, write_report
from shared.report.metrics import bar_index, exposure_pct, max_drawdown_pct, trade_bars, win_rate_pct
from shared.report.svg import downsample, nice_ticks, time_ticks
from shared.report.writer import iso_utc

T0 = 1_577_836_800_000  # 2020-01-01T00:00:00Z
MIN = 60_000


def make_bars(closes: list[float]) -> list[Bar]:
    bars = []
    for i, c in enumerate(closes):
        o = closes[i - 1] if i else c
        bars.append(Bar("BTCUSDT", "1m", T0 + i * MIN, T0 + i * MIN + MIN - 1, o, max(o, c), min(o, c), c, 1.0))
    return bars


def trade(entry_bar: int, exit_bar: int, pnl: float, commission: float = 1.0) -> ClosedTrade:
    return ClosedTrade(symbol="BTCUSDT", entry_time=T0 + entry_bar * MIN, exit_time=T0 + exit_bar * MIN,
                       entry_price=100.0, exit_price=100.0 + pnl, size=1.0, pnl=pnl, return_pct=pnl / 100,
                       commission=commission)


def make_result(equity: list[float], trades: list[ClosedTrade], *, open_position: Position | None = None,
                rejections: Counter[str] | None = None, elapsed_s: float = 0.5) -> ReplayResult:
    bars = make_bars([100.0 + i for i in range(len(equity))])
    return ReplayResult(
        symbol="BTCUSDT", strategy="sma_cross", params={"fast": 10, "slow": 20}, cash=1000.0, commission=0.001,
        bars=bars, equity=equity, trades=trades, signals=[], decisions=[], intents=[], reports=[],
        open_position=open_position, final_equity=equity[-1], rejections=rejections or Counter(), reduced=2,
        events=500, elapsed_s=elapsed_s)


# -- definitions --------------------------------------------------------------------------------

def test_summary_has_exactly_the_documented_keys() -> None:
    s = summarize(make_result([1000.0] * 5, []))
    assert tuple(s) == SUMMARY_KEYS
    assert SUMMARY_KEYS == ("n_trades", "return_pct", "equity_final", "win_rate_pct", "max_drawdown_pct",
                            "exposure_pct", "commissions", "events", "events_per_s", "rejections", "reduced")


def test_figures_follow_backtesting_definitions() -> None:
    equity = [1000.0, 1000.0, 1100.0, 990.0, 1045.0, 1200.0, 1150.0, 1150.0, 1180.0, 1210.0]
    trades = [trade(1, 3, 10.0, 2.0), trade(5, 5, 0.0, 1.5), trade(6, 8, -5.0, 2.5)]
    s = summarize(make_result(equity, trades, rejections=Counter({"NO_POSITION": 3, "DUPLICATE": 1})))
    assert s["n_trades"] == 3
    assert s["return_pct"] == pytest.approx(21.0)
    assert s["equity_final"] == 1210.0
    # PnL == 0 is not a win.
    assert s["win_rate_pct"] == pytest.approx(100 / 3)
    # Peak 1100 -> 990 is the deepest fall (-10 %); 1200 -> 1150 is only -4.2 %.
    assert s["max_drawdown_pct"] == pytest.approx(-10.0)
    # Bars 1..3, 5 and 6..8 inclusive: 7 of 10 bars.
    assert s["exposure_pct"] == pytest.approx(70.0)
    assert s["commissions"] == pytest.approx(6.0)
    assert s["events"] == 500 and s["events_per_s"] == pytest.approx(1000.0)
    assert s["rejections"] == {"DUPLICATE": 1, "NO_POSITION": 3}
    assert s["reduced"] == 2


def test_open_position_counts_in_equity_only() -> None:
    pos = Position("BTCUSDT", "BTC", "USDT", qty=2.0, cost=200.2, mark=110.0, entry_time=T0 + 4 * MIN,
                   entry_qty=2.0, entry_notional=200.0, fees_quote=0.2, entry_fills=1, last_entry_price=100.0)
    equity = [1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1019.8]
    s = summarize(make_result(equity, [], open_position=pos))
    assert s["n_trades"] == 0 and s["exposure_pct"] == 0.0 and s["commissions"] == 0.0
    assert math.isnan(s["win_rate_pct"])
    assert s["equity_final"] == 1019.8 and s["return_pct"] == pytest.approx(1.98)


def test_no_drawdown_is_minus_zero_like_backtesting() -> None:
    assert max_drawdown_pct([1.0, 2.0, 3.0]) == 0.0
    assert math.copysign(1.0, max_drawdown_pct([1.0, 2.0])) == -1.0


def test_exposure_counts_overlaps_once_and_includes_the_exit_bar() -> None:
    assert exposure_pct(10, [(0, 0)]) == pytest.approx(10.0)
    assert exposure_pct(10, [(2, 5), (4, 6)]) == pytest.approx(50.0)
    assert exposure_pct(0, []) == 0.0


def test_fill_times_map_to_bars() -> None:
    bars = make_bars([1.0, 2.0, 3.0, 4.0])
    times = [b.open_time for b in bars]
    assert bar_index(times, times[2]) == 2
    assert bar_index(times, times[2] + 1234) == 2  # a fill inside the bar (trade data)
    with pytest.raises(ValueError):
        bar_index(times, times[0] - 1)
    # A redelivered copy in the bars does not move the index of a fill.
    assert trade_bars([*bars[:3], bars[1], bars[3]], [trade(1, 3, 1.0)]) == [(1, 4)]


def test_win_rate_without_trades_is_nan() -> None:
    assert math.isnan(win_rate_pct([]))
    assert win_rate_pct([trade(0, 1, 1.0), trade(1, 2, -1.0)]) == 50.0


# -- files --------------------------------------------------------------------------------------

def test_files(tmp_path: Path) -> None:
    pos = Position("BTCUSDT", "BTC", "USDT", qty=0.5, cost=50.05, mark=104.0, entry_time=T0 + 7 * MIN,
                   entry_qty=0.5, entry_notional=50.0, fees_quote=0.05, entry_fills=1, last_entry_price=100.0)
    equity = [1000.0, 1000.0, 1010.0, 1005.0, 1003.0, 1003.0, 1003.0, 1002.95, 1003.0, 1004.95]
    trades = [trade(1, 3, 3.0), trade(4, 6, 0.123456789012345)]
    result = make_result(equity, trades, open_position=pos, elapsed_s=0.0)
    out = tmp_path / "nested" / "run"
    html = write_report(result, out)
    assert html == out / "report.html" and html.is_file()

    text = (out / "summary.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    summary = json.loads(text)
    assert list(summary)[:len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert summary["events_per_s"] is None  # not measured: NaN in summarize, null in JSON
    assert summary["first_bar"] == "2020-01-01T00:00:00Z" and summary["last_bar"] == "2020-01-01T00:09:00Z"
    assert summary["params"] == {"fast": 10, "slow": 20} and summary["cash"] == 1000.0
    assert summary["open_position"]["entry_time"] == "2020-01-01T00:07:00Z"
    assert summary["open_position"]["unrealized_pnl"] == pytest.approx(0.5 * 104 - 50.05)

    with (out / "trades.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "return_pct"],
        ["2020-01-01T00:01:00Z", "2020-01-01T00:03:00Z", "100.0", "103.0", "1.0", "3.0", "0.03"],
        ["2020-01-01T00:04:00Z", "2020-01-01T00:06:00Z", "100.0", repr(100.123456789012345), "1.0",
         repr(0.123456789012345), repr(0.123456789012345 / 100)],
    ]
    with (out / "equity.csv").open(newline="", encoding="utf-8") as fh:
        eq = list(csv.reader(fh))
    assert eq[0] == ["time", "equity"] and len(eq) == 11
    assert eq[1] == ["2020-01-01T00:00:00Z", "1000.0"] and eq[-1] == ["2020-01-01T00:09:00Z", "1004.95"]


def test_no_trades_still_writes_everything(tmp_path: Path) -> None:
    write_report(make_result([1000.0] * 3, []), tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["win_rate_pct"] is None and summary["n_trades"] == 0
    assert (tmp_path / "trades.csv").read_text().splitlines() == [
        "entry_time,exit_time,entry_price,exit_price,size,pnl,return_pct"]
    assert "No closed trades" in (tmp_path / "report.html").read_text()


def test_iso_times() -> None:
    assert iso_utc(T0 + 34 * MIN) == "2020-01-01T00:34:00Z"
    assert iso_utc(T0 + 1_234) == "2020-01-01T00:00:01.234Z"
    assert iso_utc(1_617_220_800_000) == "2021-03-31T20:00:00Z"


# -- HTML ---------------------------------------------------------------------------------------

def test_html_is_self_contained(tmp_path: Path) -> None:
    equity = [1000.0 + (i % 7) * 3 - i * 0.1 for i in range(5000)]
    trades = [trade(i, i + 5, (-1) ** i * 2.0) for i in range(10, 4900, 50)]
    html = write_report(make_result(equity, trades), tmp_path).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    lowered = html.lower()
    for forbidden in ("<script", "<link", "@import", "src=", "href=", "url(http", "cdn", "@font-face"):
        assert forbidden not in lowered
    # The only URLs are the SVG namespace declarations, which are never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count("<svg") == 3
    for title in ("Equity", "Drawdown", "close with trades"):
        assert title in html
    # Every trade has an entry and an exit marker, coloured by outcome, and a table row.
    assert html.count("<title>entry #") == len(trades) and html.count("<title>exit #") == len(trades)
    assert html.count("<tr><td>") == len(trades)
    # 5000 bars are cut to a min and a max per pixel column of the 1088-px plot, and the ends.
    for points in re.findall(r'<polyline points="([^"]+)"', html):
        assert len(points.split()) <= 2 * 1088 + 2


def test_html_escapes_names(tmp_path: Path) -> None:
    result = make_result([1000.0] * 3, [])
    result.params = {"x": "<b>&"}
    html = write_report(result, tmp_path).read_text(encoding="utf-8")
    assert "<b>&" not in html and "&lt;b&gt;&amp;" in html


# -- charts -------------------------------------------------------------------------------------

@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=5000),
       st.integers(4, 600))
def test_downsample_keeps_extremes_and_order(ys: list[float], target: int) -> None:
    xs = [float(i) for i in range(len(ys))]
    dx, dy = downsample(xs, ys, target)
    assert len(dx) <= max(target, 2) + 2 or len(dx) == len(ys)
    assert dx == sorted(set(dx)) and dx[0] == 0 and dx[-1] == len(ys) - 1
    assert max(dy) == max(ys) and min(dy) == min(ys)
    assert all(ys[int(x)] == y for x, y in zip(dx, dy, strict=True))


def test_nice_ticks() -> None:
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    ticks = nice_ticks(6229.4, 10012.3)
    assert ticks[0] >= 6229.4 and ticks[-1] <= 10012.3 and len(ticks) >= 4
    assert nice_ticks(-37.7, 0.0)[-1] == 0.0


def test_time_ticks_are_round() -> None:
    day = 24 * 60 * MIN
    ticks, label = time_ticks(T0, T0 + 3 * day - MIN)
    assert all(t % (6 * 60 * MIN) == 0 for t in ticks) and ticks[0] == T0
    assert label(ticks[0], None) == ("00:00", "Jan 01")
    assert label(ticks[1], ticks[0])[1] == ""
    q1 = 1_609_459_200_000  # 2021-01-01
    ticks, label = time_ticks(q1, q1 + 89 * day)
    assert len(ticks) >= 4
    years, _ = time_ticks(q1, q1 + 3 * 365 * day)
    assert all(iso_utc(t).endswith("-01T00:00:00Z") for t in years)
