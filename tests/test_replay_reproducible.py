"""Report folders are written whole or not at all, and a summary.json reruns its own replay."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from shared.cli import main
from shared.report.folder import OutError, ReportFolder
from shared.samples import btcusdt_1h_path


def replay_1h(out: Path, *extra: str) -> list[str]:
    return ["replay", "--source", str(btcusdt_1h_path()), "--strategy", "sma_cross", "--param", "fast=10",
            "--param", "slow=20", "--commission", "0.002", *extra, "--out", str(out)]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_write_leaves_the_earlier_report_untouched(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "r"
    assert main(replay_1h(out)) == 0
    before = files(out)
    import shared.report.writer as writer

    def broken(*_: object, **__: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_equity", broken)  # fails after summary.json and trades.csv
    with pytest.raises(OSError):
        main(["replay", "--source", str(btcusdt_1h_path()), "--strategy", "sma_cross", "--param", "fast=5",
              "--out", str(out)])
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # the staging folder is gone


def test_a_new_report_replaces_the_old_one_whole(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert main(replay_1h(out)) == 0
    old = json.loads((out / "summary.json").read_text())
    assert main(replay_1h(out, "--cash", "5000")) == 0
    new = json.loads((out / "summary.json").read_text())
    assert old["cash"] == 10_000 and new["cash"] == 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_report_folder_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "thesis.tex").write_text("...")
    with pytest.raises(OutError, match=r"thesis\.tex"):
        ReportFolder(tmp_path / "x")
    with ReportFolder(tmp_path / "y") as folder:
        (folder.staging / "summary.json").write_text("{}")
    assert not (tmp_path / "y").exists()  # no commit: nothing appears


def test_summary_records_config_inputs_and_version(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MARKETFLOW_RISK_MAX_DRAWDOWN_PCT", "5")
    risk_file = tmp_path / "risk.json"
    risk_file.write_text('{"price_band_pct": 7}')
    monkeypatch.setenv("MARKETFLOW_RISK_FILE", str(risk_file))
    out = tmp_path / "r"
    assert main(replay_1h(out, "--risk", "max_open_positions=3")) == 0
    s = json.loads((out / "summary.json").read_text())
    config = s["config"]
    assert config["strategy"] == "sma_cross" and config["params"] == {"fast": 10, "slow": 20}
    assert config["cash"] == 10_000 and config["commission"] == 0.002 and config["fee_mode"] == "quote"
    risk = config["risk"]
    assert risk["max_drawdown_pct"] == {"value": 5.0, "source": "environment"}
    assert risk["price_band_pct"] == {"value": 7.0, "source": "file"}
    assert risk["max_open_positions"] == {"value": 3, "source": "flag"}
    assert risk["max_signal_age_s"] == {"value": 60.0, "source": "default"}
    from shared.risk import RiskConfig

    assert set(risk) == set(RiskConfig.model_fields)
    (inp,) = s["inputs"]
    assert inp["path"] == str(btcusdt_1h_path().absolute())
    assert inp["sha256"] == hashlib.sha256(btcusdt_1h_path().read_bytes()).hexdigest()
    assert inp["rows"] == 2158 and inp["first_bar"] == "2021-01-01T00:00:00Z"
    assert inp["last_bar"] == "2021-03-31T23:00:00Z"
    assert s["version"]
    html = (out / "report.html").read_text()
    assert "Configuration" in html and "risk.max_drawdown_pct" in html and "environment" in html
    assert inp["sha256"][:16] in html


def test_from_summary_reruns_the_same_replay_whatever_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MARKETFLOW_RISK_MAX_DRAWDOWN_PCT", "5")
    first = tmp_path / "first"
    assert main(["run", "--out", str(first)]) == 0
    s1 = json.loads((first / "summary.json").read_text())
    assert s1["n_trades"] == 28  # the environment's 5 % drawdown limit stops the run early
    monkeypatch.delenv("MARKETFLOW_RISK_MAX_DRAWDOWN_PCT")
    again = tmp_path / "again"
    assert main(["replay", "--from-summary", str(first / "summary.json"), "--out", str(again)]) == 0
    assert (again / "trades.csv").read_bytes() == (first / "trades.csv").read_bytes()
    assert (again / "equity.csv").read_bytes() == (first / "equity.csv").read_bytes()
    s2 = json.loads((again / "summary.json").read_text())
    for key in ("n_trades", "return_pct", "equity_final", "inputs"):
        assert s2[key] == s1[key]
    assert {k: v["value"] for k, v in s2["config"]["risk"].items()} == \
        {k: v["value"] for k, v in s1["config"]["risk"].items()}


def test_from_summary_refuses_a_changed_input(tmp_path: Path, capsys) -> None:
    src = tmp_path / "BTCUSDT-1h-2021-Q1.csv"
    src.write_bytes(btcusdt_1h_path().read_bytes())
    out = tmp_path / "r"
    assert main(["replay", "--source", str(src), "--strategy", "sma_cross", "--out", str(out)]) == 0
    src.write_bytes(src.read_bytes()[:-200])
    capsys.readouterr()
    assert main(["replay", "--from-summary", str(out / "summary.json"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("marketflow: error: --from-summary") and "changed" in err
