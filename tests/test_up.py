"""`marketflow up --pace lockstep` trades exactly like `marketflow replay` on the same bars and options.

The whole stack as processes (its own Azurite, the Event Hubs emulator, the local Functions host
with the real registered functions, the executor service with the paper venue) over the first 40
bundled BTCUSDT 1m bars, a slice with a one-bar round trip (a SELL signal on the bar whose open
filled the BUY) and an exit followed by an entry on the next bar: the two cases where risk must see
the fill the positions Function just booked. About 45 s here.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from shared.cli import main
from shared.samples import btcusdt_1m_paths

pytestmark = pytest.mark.azurite  # starts its own Azurite (the pinned npm install), on free ports

BARS = 40
OPTIONS = ["--symbol", "BTCUSDT", "--strategy", "sma_cross", "--param", "fast=3", "--param", "slow=8",
           "--cash", "10000", "--commission", "0.001"]


def _slice(tmp_path: Path) -> Path:
    first = btcusdt_1m_paths()[0]
    with zipfile.ZipFile(first) as z:
        rows = z.read(z.namelist()[0]).decode().splitlines()[:BARS]
    path = tmp_path / "BTCUSDT-1m-2020-01-01-first40.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _trades(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "trades.csv").read_text())))


def test_up_lockstep_trades_equal_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _slice(tmp_path)
    assert main(["replay", "--source", str(source), *OPTIONS, "--out", str(tmp_path / "replay")]) == 0
    capsys.readouterr()
    assert main(["up", "--source", str(source), *OPTIONS, "--pace", "lockstep", "--out", str(tmp_path / "up")]) == 0
    outcome = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    replayed = _trades(tmp_path / "replay")
    assert len(replayed) == 4  # and one position still open at the end
    assert (tmp_path / "up" / "trades.csv").read_text() == (tmp_path / "replay" / "trades.csv").read_text()
    summary = {name: json.loads((tmp_path / name / "summary.json").read_text()) for name in ("replay", "up")}
    assert summary["up"]["n_trades"] == summary["replay"]["n_trades"] == 4
    assert summary["up"]["equity_final"] == pytest.approx(summary["replay"]["equity_final"], rel=1e-12)
    assert summary["up"]["open_position"] == summary["replay"]["open_position"] is not None
    # Every signal became an order and every order but the last (no bar left to fill it) a fill
    # report: the replay's own count of bars, signals, intents and reports.
    assert outcome["bars"] == BARS
    assert outcome["hub_events"] == {"signals": 10, "orders": 10, "executions": 9}
    assert BARS + sum(outcome["hub_events"].values()) == summary["replay"]["events"]
    assert outcome["latency_ms"]["signals"]["n"] == BARS
