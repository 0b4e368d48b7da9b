"""Every bad input or option of `marketflow replay` is one line `marketflow: error: ...`, exit 2,
found before the work where it can be; Ctrl-C is exit 130 and one line; no report is left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from shared.samples import btcusdt_1h_path

GOOD = "1577836800000,7195.24,7196.25,7183.14,7186.68,51.6,1577836859999,371.1,493,19.6,141.0,0\n"


def row(open_time: int, close_time: int) -> str:
    return GOOD.replace("1577836800000", str(open_time)).replace("1577836859999", str(close_time))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("marketflow: error: ")
    assert "Traceback" not in err
    return lines[0]


def replay_1h(*extra: str, out: Path) -> list[str]:
    return ["replay", "--source", str(btcusdt_1h_path()), "--strategy", "sma_cross", *extra, "--out", str(out)]


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--symbol", "ETHUSDT"], ["--symbol", "ETHUSDT", "BTCUSDT-1h-2021-Q1.csv"]),
        (["--cash", "0"], ["--cash", "above 0"]),
        (["--cash", "inf"], ["--cash", "inf"]),
        (["--cash", "nan"], ["--cash"]),
        (["--cash", "-5"], ["--cash"]),
        (["--commission", "1"], ["--commission", "[0, 1)"]),
        (["--commission", "-0.1"], ["--commission"]),
        (["--commission", "nan"], ["--commission"]),
        (["--param", "fast=5", "--param", "fast=6"], ["--param", "fast given twice"]),
        (["--param", "fast=30", "--param", "slow=20"], ["--strategy/--param", "fast"]),
        (["--risk", "exchange_info_file=/no/such/exchange_info.json"],
         ["exchange_info_file", "/no/such/exchange_info.json", "--risk", "cannot read"]),
    ],
)
def test_bad_option_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                          names: list[str]) -> None:
    out = tmp_path / "out"
    code, err = run_cli(replay_1h(*extra, out=out), capsys)
    line = one_error_line(err)
    assert code == 2
    for name in names:
        assert name in line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left behind either


def test_garbage_exchange_info_names_file_line_and_column(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "exchange_info.json"
    bad.write_text('{\n  "symbols": [1,\n  oops]\n}\n')
    code, err = run_cli(replay_1h("--risk", f"exchange_info_file={bad}", out=tmp_path / "o"), capsys)
    line = one_error_line(err)
    assert code == 2 and str(bad) in line and "line 3 column 3" in line and "not valid JSON" in line


def test_exchange_info_that_is_json_but_not_exchange_info(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "exchange_info.json"
    bad.write_text('{"symbols": [{"filters": []}]}')
    code, err = run_cli(replay_1h("--risk", f"exchange_info_file={bad}", out=tmp_path / "o"), capsys)
    line = one_error_line(err)
    assert code == 2 and "not a Binance exchangeInfo document" in line


def test_exchange_info_from_the_environment_is_named_so(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("MARKETFLOW_RISK_EXCHANGE_INFO_FILE", str(tmp_path / "missing.json"))
    code, err = run_cli(replay_1h(out=tmp_path / "o"), capsys)
    assert code == 2 and "MARKETFLOW_RISK_EXCHANGE_INFO_FILE" in one_error_line(err)


def test_out_under_a_regular_file_fails_before_the_replay(tmp_path: Path, capsys, monkeypatch) -> None:
    import shared.pipeline.replay as replay_module

    def never(*_: object, **__: object) -> None:
        raise AssertionError("the replay ran before --out was checked")

    monkeypatch.setattr(replay_module, "run_replay", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run_cli(replay_1h(out=blocker / "report"), capsys)
    line = one_error_line(err)
    assert code == 2 and "--out" in line and str(blocker) in line and "regular file" in line


def test_out_that_is_a_file_or_holds_other_files(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "a"
    afile.write_text("x")
    code, err = run_cli(replay_1h(out=afile), capsys)
    assert code == 2 and "is a file" in one_error_line(err)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code, err = run_cli(replay_1h(out=folder), capsys)
    assert code == 2 and "notes.txt" in one_error_line(err)
    assert (folder / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_in_a_read_only_folder(tmp_path: Path, capsys) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = run_cli(replay_1h(out=ro / "r"), capsys)
    finally:
        ro.chmod(0o755)
    assert code == 2 and "cannot write" in one_error_line(err)


def test_files_mixing_intervals(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "BTCUSDT-1m-2020-01-01.csv", tmp_path / "BTCUSDT-1h-2020-01-02.csv"
    a.write_text(GOOD)
    b.write_text(GOOD)
    code, err = run_cli(["replay", "--source", str(a), str(b), "--strategy", "sma_cross", "--out",
                         str(tmp_path / "o")], capsys)
    line = one_error_line(err)
    assert code == 2 and "--source" in line and "mix intervals" in line and a.name in line and b.name in line


def test_year_5138_is_named_at_its_own_line(tmp_path: Path, capsys) -> None:
    src = tmp_path / "BTCUSDT-1m-2020-01-01.csv"
    # 99,999,999,960,000 ms is below the µs threshold, so it is a millisecond time: year 5138.
    src.write_text(GOOD + row(1577836860000, 1577836919999) + row(99_999_999_960_000, 99_999_999_999_999))
    code, err = run_cli(["replay", "--source", str(src), "--strategy", "sma_cross", "--out", str(tmp_path / "o")],
                        capsys)
    line = one_error_line(err)
    assert code == 2 and f"{src} line 3, column open_time" in line and "5138" in line


def test_repeated_param_is_an_error_but_a_long_window_a_warning(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    code, err = run_cli(replay_1h("--param", "fast=10", "--param", "slow=5000", out=out), capsys)
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("marketflow: warning:")]
    assert len(warnings) == 1 and "slow=5000" in warnings[0] and "2158 bars" in warnings[0]
    assert (out / "summary.json").exists()


def test_from_summary_without_config(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "summary.json"
    bad.write_text('{"n_trades": 1}')
    code, err = run_cli(["replay", "--from-summary", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--from-summary" in one_error_line(err)
    code, err = run_cli(["replay", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--source is required" in one_error_line(err)


def test_ctrl_c_is_130_one_line_and_leaves_the_earlier_report(tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "o"
    assert main(replay_1h(out=out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    import shared.pipeline.replay as replay_module

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(replay_module, "run_replay", interrupted)
    code, err = run_cli(replay_1h("--param", "fast=5", out=out), capsys)
    assert code == 130
    assert err.strip() == "marketflow: interrupted"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_sigint_of_the_real_process(tmp_path: Path) -> None:
    """A real SIGINT while the process runs: exit 130, one line, no traceback, no report."""
    import signal
    import time

    work = tmp_path / "work"
    work.mkdir()
    out, started = work / "o", tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # A process started from a background job inherits SIGINT ignored (POSIX shells do that), and
    # Python then installs no KeyboardInterrupt handler: restore the default a terminal gives.
    proc = subprocess.Popen([sys.executable, "-c", "import pathlib, signal, time, sys\n"
                             "signal.signal(signal.SIGINT, signal.default_int_handler)\nfrom shared.cli import main\n"
                             "import shared.pipeline.replay as r\n"
                             f"def slow(*a, **k):\n    pathlib.Path({str(started)!r}).touch()\n    time.sleep(30)\n"
                             f"r.run_replay = slow\nsys.exit(main(['run', '--out', {str(out)!r}]))"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 25
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["marketflow: interrupted"]
    assert list(work.iterdir()) == []
