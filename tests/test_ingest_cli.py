"""`marketflow ingest` and `python -m aks_ingestor` as whole processes against the loopback Binance:
files written, SIGTERM/SIGINT flush and one line of totals, exit 0; the ops endpoints; bad options."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.binance_loopback import InThread, RestServer, StreamServer, kline_lines, kline_records, kline_rows

ROOT = Path(__file__).resolve().parent.parent
N = 200


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def rows_in(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_cli_ingest_writes_files_and_prints_totals_on_sigint(tmp_path: Path) -> None:
    sig = signal.SIGINT  # SIGTERM: the service test below
    rows = kline_rows(N)
    out = tmp_path / "made" / "here"
    with InThread(StreamServer({"btcusdt@kline_1m": kline_records("BTCUSDT", rows)}),
                  RestServer({("BTCUSDT", "1m"): rows})) as servers:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "ingest", "--symbols", "BTCUSDT", "--interval", "1m",
             "--sink", f"dir:{out}", "--stream-url", servers.stream.url, "--rest-url", servers.rest.url,  # type: ignore[union-attr]
             "--stale-timeout", "5"], cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: rows_in(out / "BTCUSDT-1m-2020-01-01.csv") >= N)
        finally:
            proc.send_signal(sig)
            stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ingest: bars {N}, duplicates dropped 0, gaps 0"), stdout
    assert "reconnects 0" in lines[0] and "malformed 0" in lines[0]
    assert (out / "BTCUSDT-1m-2020-01-01.csv").read_text().splitlines() == kline_lines(N)
    assert (out / "deadletter").is_dir()


@pytest.mark.parametrize("argv, message", [
    (["--symbols", "BTCUSDT", "--stale-timeout", "90"], "stale timeout must be in (0, 60]"),
    (["--symbols", "BTCUSDT", "--sink", "kafka"], "--sink: expected eventhub or dir:PATH"),
    (["--symbols", "BTC-USDT"], "symbol 'BTC-USDT' must be letters and digits"),
    (["--symbols", "BTCUSDT", "--interval", "7m"], "unsupported interval '7m'"),
])
def test_cli_ingest_bad_options_are_one_clear_line(argv: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from shared.cli import main

    assert main(["ingest", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("marketflow: error: ") and message in err[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser: (name, labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_service_from_environment_serves_health_readiness_and_metrics(tmp_path: Path) -> None:
    rows = kline_rows(N)
    port = free_port()
    with InThread(StreamServer({"btcusdt@kline_1m": kline_records("BTCUSDT", rows)})) as servers:
        e = env() | {"INGEST_SYMBOLS": "BTCUSDT", "INGEST_INTERVALS": "1m", "INGEST_SINK": f"dir:{tmp_path}",
                     "INGEST_STREAM_URL": servers.stream.url, "INGEST_REST_URL": "", "INGEST_HTTP_PORT": str(port),
                     "INGEST_STALE_TIMEOUT": "5"}
        proc = subprocess.Popen([sys.executable, "-m", "aks_ingestor"], cwd=ROOT, env=e, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: rows_in(tmp_path / "BTCUSDT-1m-2020-01-01.csv") >= N)
            base = f"http://127.0.0.1:{port}"
            assert get(base + "/healthz") == (200, '{"status": "ok"}')
            assert json.loads(get(base + "/readyz")[1]) == {
                "ready": True, "checks": {"streams_connected": True, "not_stopping": True}}
            status, text = get(base + "/metrics")
            assert status == 200
            values = sample_values(text)
            assert values[("marketflow_ingest_messages_total", (("stream", "btcusdt@kline_1m"),))] == N
            assert values[("marketflow_ingest_published_total", ())] == N
            for name in ("reconnects_total", "gaps_found_total", "backfilled_total", "duplicates_dropped_total",
                         "malformed_total", "queue_overflows_total", "publish_seconds_bucket",
                         'last_event_age_seconds{symbol="BTCUSDT"}'):
                assert "marketflow_ingest_" + name in text, name
            assert get(base + "/nope")[0] == 404
        finally:
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert stdout.startswith(f"ingest: bars {N}, ")


def test_service_without_symbols_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from aks_ingestor.main import main

    monkeypatch.delenv("INGEST_SYMBOLS", raising=False)
    assert main() == 2
    assert capsys.readouterr().err.strip() == "aks_ingestor: error: INGEST_SYMBOLS is not set (e.g. BTCUSDT,ETHUSDT)"


def test_service_to_the_emulator_flushes_what_it_holds_on_sigterm(tmp_path: Path) -> None:
    """The real SDK against the emulator: a window longer than the test holds every bar in the
    batcher (the metrics show them pending, none published); SIGTERM publishes them, in order."""
    from emulator import BackgroundEmulator, from_hubs
    from shared import topology
    from shared.events import Kline, decode_as
    from tests.emulator_support import receive

    rows = kline_rows(N)
    port = free_port()
    with BackgroundEmulator(from_hubs(topology.HUBS.values()), port=0, health_port=0) as emu, \
            InThread(StreamServer({"btcusdt@kline_1m": kline_records("BTCUSDT", rows)})) as servers:
        e = env() | {"INGEST_SYMBOLS": "BTCUSDT", "INGEST_INTERVALS": "1m", "INGEST_SINK": "eventhub",
                     "EVENTHUB": emu.connection_string(), "INGEST_DEADLETTER": f"dir:{tmp_path}",
                     "INGEST_STREAM_URL": servers.stream.url, "INGEST_REST_URL": "", "INGEST_HTTP_PORT": str(port),
                     "INGEST_STALE_TIMEOUT": "30", "INGEST_BATCH_WINDOW_MS": "600000", "INGEST_MAX_BATCH": "1000"}
        proc = subprocess.Popen([sys.executable, "-m", "aks_ingestor"], cwd=ROOT, env=e, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{port}"

            def all_pending() -> bool:
                try:
                    return sample_values(get(base + "/metrics")[1]).get(("marketflow_ingest_pending", ())) == N
                except urllib.error.URLError:  # not listening yet
                    return False

            wait_for(all_pending, 30.0)
            status, text = get(base + "/metrics")
            assert status == 200 and sample_values(text)[("marketflow_ingest_published_total", ())] == 0
            assert get(base + "/readyz")[0] == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=40)
        assert proc.returncode == 0, stderr
        assert stdout.startswith(f"ingest: bars {N}, ")
        got = receive(emu.connection_string(topology.MARKET_DATA.name), N, timeout=20.0)
    bars = [decode_as(ev.body_as_str(), Kline) for ev in got]
    assert [b.open_time for b in bars] == [int(r[0]) for r in rows]  # every bar once, in order
    assert {ev.properties[b"marketflow.type"] for ev in got} == {b"kline"}
