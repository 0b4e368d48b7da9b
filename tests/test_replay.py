"""The in-process replay on the bundled samples: determinism, redelivery, causality, long-only.

These are the properties the Azure deployment relies on (at-least-once delivery, ids derived
from content, fills only after the decision), checked on real data end to end.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import pytest

from shared.events import OrderStatus, Side
from shared.market import Bar
from shared.pipeline.replay import ReplayResult, run_replay
from shared.report import SUMMARY_KEYS, summarize, write_report
from shared.report.metrics import trade_bars

PARAMS = {"fast": 10, "slow": 20}




@pytest.fixture(scope="module", params=["1m", "1h"])
def sample(request: pytest.FixtureRequest, bars_1m: list[Bar], bars_1h: list[Bar]) -> tuple[list[Bar], ReplayResult]:
    bars = bars_1m if request.param == "1m" else bars_1h
    return bars, replay(bars)


def replay(bars: Sequence[Bar]) -> ReplayResult:
    return run_replay(bars, "sma_cross", PARAMS, cash=10_000, commission=0.002)


def fingerprint(r: ReplayResult) -> dict[str, object]:
    """Everything a replay decides, without wall-clock figures."""
    s = summarize(r)
    s.pop("events_per_s")
    return {
        "signals": [(x.event_id, x.correlation_id, x.side, x.bar_open_time) for x in r.signals],
        "decisions": [(d.event_id, d.status, d.reasons) for d in r.decisions],
        "intents": [(i.event_id, i.client_order_id, i.quantity, i.quote_quantity) for i in r.intents],
        "reports": [(x.event_id, x.status, x.event_time, x.fills) for x in r.reports],
        "trades": list(r.trades),
        "final_equity": r.final_equity,
        "open_position": r.open_position,
        "summary": s,
    }


def equity_by_time(r: ReplayResult) -> dict[int, float]:
    return {b.open_time: e for b, e in zip(r.bars, r.equity, strict=True)}


def test_two_replays_are_identical(bars_1m: list[Bar]) -> None:
    a, b = replay(bars_1m), replay(list(bars_1m))
    assert fingerprint(a) == fingerprint(b)
    assert a.equity == b.equity
    assert len(a.signals) > 200 and len(a.reports) > 200


def test_event_ids_are_unique(sample: tuple[list[Bar], ReplayResult]) -> None:
    _, r = sample
    for events in (r.signals, r.intents, r.reports):
        ids = [e.event_id for e in events]
        assert len(ids) == len(set(ids))


def redelivered(bars: Sequence[Bar], skip: set[int], *, old: bool) -> list[Bar]:
    """Every third bar delivered twice (and, with `old`, a 50-bar-old one after it), except `skip`."""
    fed: list[Bar] = []
    for i, bar in enumerate(bars):
        fed.append(bar)
        if bar.open_time not in skip and i % 3 == 0:
            fed.append(bar)
            if old and i >= 50:
                fed.append(bars[i - 50])
    return fed


DECISIONS = ("signals", "decisions", "intents", "reports", "trades", "final_equity", "open_position")


@pytest.mark.parametrize("old", [False, True], ids=["duplicates", "duplicates+late"])
def test_redelivered_bars_change_no_decision(bars_1m: list[Bar], old: bool) -> None:
    """Duplicates and late old bars are ignored by the strategy: same signals, orders, fills, trades.

    """
    base = replay(bars_1m)
    fed = redelivered(bars_1m, {s.bar_open_time for s in base.signals}, old=old)
    assert len(fed) > len(bars_1m) + 1000
    a, b = fingerprint(replay(fed)), fingerprint(base)
    assert {k: a[k] for k in DECISIONS} == {k: b[k] for k in DECISIONS}


def test_redelivered_signal_bar_does_not_fill_the_order(bars_1m: list[Bar]) -> None:
    base = replay(bars_1m)
    again = replay([x for bar in bars_1m for x in (bar, bar)])
    assert again.trades == base.trades
    assert again.final_equity == base.final_equity


def test_redelivered_bars_give_the_same_report(bars_1m: list[Bar]) -> None:
    base = replay(bars_1m)
    fed = redelivered(bars_1m, {s.bar_open_time for s in base.signals}, old=True)
    again = replay(fed)
    a, b = fingerprint(again), fingerprint(base)
    # Redelivered events are received (and counted as events) but change nothing else.
    assert a["summary"].pop("events") - b["summary"].pop("events") == len(fed) - len(bars_1m) == again.ignored
    assert a == b
    assert again.equity == base.equity
    assert list(again.bars) == list(bars_1m)


def test_correlation_follows_market_event_signal_intent_report(sample: tuple[list[Bar], ReplayResult]) -> None:
    bars, r = sample
    by_open = {b.open_time: b for b in bars}
    signals = {s.event_id: s for s in r.signals}
    intents = {i.event_id: i for i in r.intents}
    for s in r.signals:
        bar = by_open[s.bar_open_time]
        assert s.market_event_id == bar.event_id == s.correlation_id
        assert s.event_time == bar.close_time and s.price == bar.close
    for i in r.intents:
        s = signals[i.signal_id]
        assert i.correlation_id == s.correlation_id and i.side == s.side and i.symbol == s.symbol
    assert r.reports
    for rep in r.reports:
        i = intents[rep.intent_id]
        assert rep.correlation_id == i.correlation_id and rep.client_order_id == i.client_order_id
    # Each intent is filled once, after the close of its signal's bar (the last one may still wait).
    for i in r.intents:
        statuses = [(rep.status, rep.event_time) for rep in r.reports if rep.intent_id == i.event_id]
        assert [st for st, _ in statuses] == [OrderStatus.FILLED] or (i is r.intents[-1] and not statuses)
        if statuses:
            assert statuses[0][1] > signals[i.signal_id].event_time


def test_fills_are_at_the_open_of_the_bar_after_the_signal(sample: tuple[list[Bar], ReplayResult]) -> None:
    bars, r = sample
    index = {b.open_time: k for k, b in enumerate(bars)}
    signals = {s.event_id: s for s in r.signals}
    intents = {i.event_id: i for i in r.intents}
    fill_bar: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}
    for rep in r.fills:
        s = signals[intents[rep.intent_id].signal_id]
        k = index[rep.event_time]
        assert k == index[s.bar_open_time] + 1
        assert all(f.price == bars[k].open for f in rep.fills)
        fill_bar[rep.side].append(k)
    spans = trade_bars(bars, r.trades)
    assert [e for e, _ in spans] == fill_bar[Side.BUY][:len(spans)]
    assert [x for _, x in spans] == fill_bar[Side.SELL]
    for t, (e, x) in zip(r.trades, spans, strict=True):
        assert t.entry_time == bars[e].open_time and t.entry_price == bars[e].open
        assert t.exit_time == bars[x].open_time and t.exit_price == bars[x].open
        assert x > e


def test_long_only_never_sells_without_a_position(sample: tuple[list[Bar], ReplayResult]) -> None:
    _, r = sample
    held = 0.0
    for rep in r.fills:
        qty = sum(f.quantity for f in rep.fills)
        if rep.side is Side.BUY:
            assert held == 0.0  # one position at a time, all in
            held = qty
        else:
            assert held > 0 and qty == pytest.approx(held, rel=1e-12)
            held = 0.0
    # Signals and fills alternate BUY, SELL, BUY, ... from the first BUY on.
    sides = [rep.side for rep in r.fills]
    assert sides[0] is Side.BUY
    assert all(a is not b for a, b in pairwise(sides))
    # A SELL signal while flat is a NO_POSITION rejection (a BUY while long POSITION_OPEN), never
    # an order; fills land before the next bar's signal, so the book is current at each signal.
    expected = {"NO_POSITION": 0, "POSITION_OPEN": 0}
    long = False
    for s in r.signals:
        if (s.side is Side.BUY) == long:
            expected["NO_POSITION" if s.side is Side.SELL else "POSITION_OPEN"] += 1
        else:
            long = s.side is Side.BUY
    assert summarize(r)["rejections"] == {k: v for k, v in expected.items() if v}
    assert len(r.intents) == len(r.signals) - sum(expected.values())


def test_the_1h_sample_rejects_its_first_cross_down(bars_1h: list[Bar]) -> None:
    r = replay(bars_1h)
    assert r.signals[0].side is Side.SELL
    assert dict(r.rejections) == {"NO_POSITION": 1}
    assert len(r.intents) == len(r.signals) - 1 == 121


def test_report_files_have_the_exact_columns_and_keys(sample: tuple[list[Bar], ReplayResult], tmp_path: Path) -> None:
    bars, r = sample
    html = write_report(r, tmp_path)
    assert html == tmp_path / "report.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["equity.csv", "report.html", "summary.json", "trades.csv"]

    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert list(summary)[:len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert list(summarize(r)) == list(SUMMARY_KEYS)
    assert summary["symbol"] == "BTCUSDT" and summary["strategy"] == "sma_cross" and summary["params"] == PARAMS
    assert summary["first_bar"].endswith("Z") and summary["n_bars"] == len(bars)
    assert summary["n_trades"] == len(r.trades)

    with (tmp_path / "trades.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "return_pct"]
    assert len(rows) == len(r.trades) + 1
    first = r.trades[0]
    assert rows[1] == [
        _iso(first.entry_time), _iso(first.exit_time), repr(first.entry_price), repr(first.exit_price),
        repr(first.size), repr(first.pnl), repr(first.return_pct)]
    assert all(float(row[6]) == t.return_pct for row, t in zip(rows[1:], r.trades, strict=True))

    with (tmp_path / "equity.csv").open(newline="", encoding="utf-8") as fh:
        eq = list(csv.reader(fh))
    assert eq[0] == ["time", "equity"]
    assert len(eq) == len(bars) + 1
    assert eq[1] == [_iso(bars[0].open_time), repr(float(r.equity[0]))]
    assert [float(e) for _, e in eq[1:]] == r.equity


def test_1m_trades_csv_starts_as_the_reference(bars_1m: list[Bar], tmp_path: Path) -> None:
    write_report(replay(bars_1m), tmp_path)
    with (tmp_path / "trades.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["entry_time"] == "2020-01-01T00:34:00Z" and rows[0]["exit_time"] == "2020-01-01T00:45:00Z"
    assert float(rows[0]["entry_price"]) == 7180.60 and float(rows[0]["size"]) == 1.38986156
    assert float(rows[0]["pnl"]) == pytest.approx(-41.654012, abs=1e-6)


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_gc_paused_restores_the_collector_and_promotes_what_was_allocated() -> None:
    import gc

    from shared.gc_pause import gc_paused

    gc.collect()
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        kept = [[i] for i in range(1000)]  # young, tracked objects
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert gc.get_count()[0] < 100  # promoted to the oldest generation, not left for a young pass
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a disabled collector stays disabled
    finally:
        gc.enable()
    assert len(kept) == 1000


def test_progress_chunks_change_nothing_but_report_every_bar(bars_1m: list[Bar]) -> None:
    """The replay runs in chunks between progress reports; the outcome must not depend on them."""
    seen: list[int] = []
    chunked = run_replay(bars_1m, "sma_cross", progress=seen.append, progress_every=997)
    whole = run_replay(bars_1m, "sma_cross")
    assert seen == [997] * 4 + [4320 - 4 * 997] and sum(seen) == len(bars_1m)
    assert fingerprint(chunked) == fingerprint(whole) and chunked.equity == whole.equity
