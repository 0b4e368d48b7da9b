"""`marketflow sweep`: each combination's figures are exactly those `marketflow replay` gives with
its parameters; refused combinations are listed with the strategy's reason; two worker processes
give the same files as one; bad options are one line, exit 2, and leave no folder; Ctrl-C is exit
130, one line, and leaves an earlier sweep untouched."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.cli import main
from shared.samples import btcusdt_1m_paths

FIGURES = ("return_pct", "equity_final", "n_trades", "win_rate_pct", "max_drawdown_pct", "exposure_pct",
           "commissions", "events", "reduced", "rejections")


def sweep_argv(out: Path, *extra: str, grid: tuple[str, ...] = ("fast=5,10,25", "slow=20:30:10")) -> list[str]:
    argv = ["sweep", "--source", *map(str, btcusdt_1m_paths()), "--strategy", "sma_cross"]
    for g in grid:
        argv += ["--grid", g]
    return [*argv, *extra, "--out", str(out)]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "one-job"
    assert main(sweep_argv(out)) == 0
    return out


def test_every_combination_has_the_replays_figures(swept: Path, tmp_path: Path) -> None:
    doc = json.loads((swept / "results.json").read_text())
    ran = [r for r in doc["results"] if r["status"] == "ok"]
    assert doc["combinations"] == 6 and len(ran) == 5 and doc["grid"] == ["fast", "slow"]
    for row in ran:
        out = tmp_path / f"replay-{row['params']['fast']}-{row['params']['slow']}"
        assert main(["replay", "--source", *map(str, btcusdt_1m_paths()), "--strategy", "sma_cross",
                     "--param", f"fast={row['params']['fast']}", "--param", f"slow={row['params']['slow']}",
                     "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert {k: row[k] for k in FIGURES} == {k: summary[k] for k in FIGURES}, row["params"]
    # Sorted by return_pct, best first; the trades differ between combinations (a real sweep).
    returns = [r["return_pct"] for r in ran]
    assert returns == sorted(returns, reverse=True)
    assert len({r["n_trades"] for r in ran}) > 1


def test_refused_combinations_are_listed_with_the_reason(swept: Path) -> None:
    doc = json.loads((swept / "results.json").read_text())
    refused = [r for r in doc["results"] if r["status"] == "refused"]
    assert [r["params"] for r in refused] == [{"fast": 25, "slow": 20}]
    assert "fast (25) must be shorter than slow (20)" in refused[0]["reason"]
    assert doc["results"][-1] == refused[0] and doc["refused"] == 1
    rows = list(csv.DictReader((swept / "results.csv").open()))
    assert [(r["rank"], r["fast"], r["slow"], r["status"]) for r in rows][-1] == ("6", "25", "20", "refused")
    assert "must be shorter" in rows[-1]["reason"] and rows[-1]["return_pct"] == ""
    assert [float(r["return_pct"]) for r in rows[:5]] == [r["return_pct"] for r in doc["results"][:5]]
    html = (swept / "heatmap.html").read_text()
    assert "fast (25) must be shorter than slow (20)" in html and "<script" not in html
    assert html.count("<td style=") == 6  # one cell per (fast, slow)


def test_two_jobs_write_what_one_job_writes(swept: Path, tmp_path: Path) -> None:
    out = tmp_path / "two-jobs"
    assert main(sweep_argv(out, "--jobs", "2")) == 0
    for name in ("results.json", "results.csv", "heatmap.html"):
        assert (out / name).read_bytes() == (swept / name).read_bytes(), name


def test_metric_orders_the_table(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(sweep_argv(out, "--metric", "n_trades")) == 0
    trades = [r["n_trades"] for r in json.loads((out / "results.json").read_text())["results"][:5]]
    assert trades == sorted(trades, reverse=True)


@pytest.mark.parametrize(
    ("grid", "extra", "names"),
    [
        (("fast=5:30",), [], ["--grid fast=5:30", "START:STOP:STEP"]),
        (("fast=a:30:5",), [], ["--grid fast=a:30:5", "'a' is not a number"]),
        (("fast=30:5:5",), [], ["--grid fast=30:5:5", "empty"]),
        (("fast=5:30:0",), [], ["--grid fast=5:30:0", "STEP"]),
        (("fast",), [], ["--grid fast", "NAME="]),
        (("bogus=1:3:1",), [], ["--grid bogus=1:3:1", "no parameter 'bogus'", "fast, slow"]),
        ((), [], ["--grid", "at least one"]),
        (("fast=5:10:5", "fast=6"), [], ["--grid", "fast given twice"]),
        (("fast=5:10:5",), ["--param", "fast=3"], ["--grid fast=5:10:5", "--param"]),
        (("fast=30", "slow=10,20"), [], ["--grid", "refuses every combination", "fast (30)"]),
        (("fast=5:10:5",), ["--jobs", "0"], ["--jobs", "at least 1"]),
        (("fast=5:10:5",), ["--metric", "sharpe"], ["--metric", "'sharpe'"]),
        (("fast=5:10:5",), ["--strategy", "nope"], ["--strategy", "'nope'"]),
        (("fast=5:10:5",), ["--cash", "0"], ["--cash"]),
    ],
)
def test_bad_option_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str], grid: tuple[str, ...],
                                          extra: list[str], names: list[str]) -> None:
    out = tmp_path / "o"
    code = main(sweep_argv(out, *extra, grid=grid))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("marketflow: error: "), err
    for name in names:
        assert name in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_out_holding_a_replay_report_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.html").write_text("a replay's report")
    assert main(sweep_argv(out, grid=("fast=5", "slow=20"))) == 2
    assert "--out" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["report.html"]


def test_ctrl_c_is_130_and_leaves_the_earlier_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o"
    assert main(sweep_argv(out, grid=("fast=5", "slow=20"))) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    import shared.cli.sweep as sweep_module

    def interrupted(task: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "_run_one", interrupted)
    assert main(sweep_argv(out, grid=("fast=6", "slow=20"))) == 130
    assert capsys.readouterr().err.strip() == "marketflow: interrupted"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_sigint_of_a_real_two_job_sweep(tmp_path: Path) -> None:
    """A real SIGINT while two spawned workers replay: exit 130, one line (no worker traceback),
    no folder left."""
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = sweep_argv(work / "o", "--jobs", "2", grid=("fast=2:60:1", "slow=61:70:1"))
    # Restore the terminal's SIGINT handler (a background job inherits SIGINT ignored).
    proc = subprocess.Popen([sys.executable, "-c", "import signal, sys\n"
                             "signal.signal(signal.SIGINT, signal.default_int_handler)\nfrom shared.cli import main\n"
                             f"sys.exit(main({argv!r}))"], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.monotonic() + 30
    while not any(work.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3.0)  # the workers are up and replaying
    assert proc.poll() is None, "the sweep ended before the signal"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["marketflow: interrupted"]
    assert list(work.iterdir()) == []
