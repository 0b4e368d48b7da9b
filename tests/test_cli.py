"""The `marketflow` CLI end to end on the bundled data: reports, errors, help."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from shared.samples import btcusdt_1h_path, btcusdt_1m_paths

SUMMARY_KEYS = {"n_trades", "return_pct", "equity_final", "win_rate_pct", "max_drawdown_pct", "exposure_pct",
                "commissions", "events", "events_per_s", "rejections", "reduced"}
INDICATOR_COLUMNS = ["open_time", "close", "sma_10", "sma_20", "ema_10", "ema_12", "ema_20", "ema_26", "rsi_14",
                     "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9", "bb_upper_20_2", "bb_middle_20_2",
                     "bb_lower_20_2", "trange", "atr_14"]


def test_run_with_no_arguments_writes_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 0
    out = tmp_path / "reports" / "run"
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "report.html", "summary.json", "trades.csv"]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["n_trades"] == 127  # every cross up is followed by a cross down on this sample
    with (out / "trades.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "return_pct"]
    assert len(rows) == 127 and rows[0]["entry_time"].endswith("Z")
    with (out / "equity.csv").open() as fh:
        assert sum(1 for _ in fh) == 4320 + 1
    printed = capsys.readouterr().out
    assert "trades" in printed and "127" in printed and "report.html" in printed


def test_replay_on_the_1h_file_matches_the_reference_trade_count(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code = main(["replay", "--source", str(btcusdt_1h_path()), "--strategy", "sma_cross", "--param", "fast=10",
                 "--param", "slow=20", "--cash", "10000", "--commission", "0.002", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trades"] == 60
    assert summary["return_pct"] == pytest.approx(46.383246, abs=1e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "--source", "nope.csv", "--strategy", "sma_cross", "--out", "x"], "no such file"),
        (["replay", "--source", "{1h}", "--strategy", "nope", "--out", "x"], "unknown strategy"),
        (["replay", "--source", "{1h}", "--strategy", "sma_cross", "--param", "fast", "--out", "x"], "key=value"),
        (["replay", "--source", "{1h}", "--strategy", "sma_cross", "--risk", "no_such_limit=1", "--out", "x"],
         "no_such_limit"),
        (["replay", "--source", "{bad}", "--strategy", "sma_cross", "--out", "x"], "line 2"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    bad = tmp_path / "BTCUSDT-1m-2020-01-01.csv"
    good = "1577836800000,7195.24,7196.25,7183.14,7186.68,51.6,1577836859999,371.1,493,19.6,141.0,0\n"
    bad.write_text(good + good.replace("1577836800000", "1577836860000").replace("7186.68", "-1"))
    argv = [a.replace("{1h}", str(btcusdt_1h_path())).replace("{bad}", str(bad)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("marketflow: error:") and message in err


def test_indicators_csv(tmp_path: Path) -> None:
    out = tmp_path / "ind.csv"
    assert main(["indicators", "--source", *map(str, btcusdt_1m_paths()), "--out", str(out)]) == 0
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == INDICATOR_COLUMNS
    assert len(rows) == 4321
    assert rows[1][2] == "" and rows[10][2] != ""  # sma_10 warms up over the first 9 bars


def test_help_on_every_command() -> None:
    for command in ([], ["run"], ["replay"], ["indicators"], ["strategies"]):
        proc = subprocess.run([sys.executable, "-m", "shared.cli", *command, "--help"], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "usage: marketflow" in proc.stdout


def test_strategies_lists_the_registry(capsys) -> None:
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    for name in ("sma_cross", "ema_cross", "rsi_reversion", "bollinger_breakout"):
        assert name in out


def test_replay_on_trades_fills_at_the_next_trade(tmp_path: Path) -> None:
    from shared.samples import trx_trades_path

    out = tmp_path / "t"
    code = main(["replay", "--trades", "--source", str(trx_trades_path()), "--interval", "1m", "--strategy",
                 "sma_cross", "--param", "fast=3", "--param", "slow=8", "--cash", "1000", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trades"] >= 1
    with (out / "equity.csv").open() as fh:
        assert sum(1 for _ in fh) == 47 + 1  # 48 traded minutes; the last is still open at the end


def test_kill_switch_round_trip_through_the_state_file(tmp_path: Path, capsys) -> None:
    state = tmp_path / "state.json"
    assert main(["trading-state", "halt", "--state-file", str(state), "--by", "alice", "--reason", "drill"]) == 0
    assert "HALTED" in capsys.readouterr().out
    # A restarted engine reads the same state: the halt survives.
    assert main(["trading-state", "show", "--state-file", str(state)]) == 0
    shown = capsys.readouterr().out
    assert "trading state: HALTED" in shown and "alice" in shown and "drill" in shown
    # A replay with that state file approves no order.
    out = tmp_path / "r"
    assert main(["run", "--risk", f"state_file={state}", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_trades"] == 0 and summary["rejections"].get("TRADING_HALTED", 0) > 0
    assert main(["trading-state", "resume", "--state-file", str(state), "--by", "alice"]) == 0
    assert "trading state: ACTIVE" in capsys.readouterr().out
    assert main(["trading-state", "show"]) == 2  # no file given and none in the environment
