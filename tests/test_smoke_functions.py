"""scripts/smoke_functions.py, the deploy workflows' smoke test, run as they run it (a child
`python scripts/smoke_functions.py`, without the project installed) against real parts here: the
repo's Event Hubs emulator for the synthetic kline, and the Function App's own `health` function
served on loopback by the devhost (devhost.http, as `func start` serves it) for the probe.

What stays untested here: `--namespace` with an Entra identity (the workflow's OIDC login; no
Azure from this machine). It shares `send_kline` and the publisher with the path tested here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_support import receive

from devhost.stack import Stack, free_port
from emulator import BackgroundEmulator
from emulator.config import from_hubs
from shared import topology

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "smoke_functions.py"
SETTING = "SMOKE_EVENTHUB"

# The registered function app's HTTP functions on loopback, until SIGTERM.
SERVE = """
import asyncio, sys
from pathlib import Path
from devhost.bindings import index, load_app
from devhost.http import serve

async def main() -> None:
    http = index(load_app("function_app", Path(sys.argv[1]))).http
    await serve(http, "127.0.0.1", int(sys.argv[2]))
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def emu() -> Iterator[BackgroundEmulator]:
    with BackgroundEmulator(from_hubs(topology.HUBS.values()), port=0, health_port=0) as e:
        yield e


def app_settings(emu: BackgroundEmulator, tmp_path: Path) -> dict[str, str]:
    """What a configured slot has (local forms): every check of `health` passes with these."""
    return {"EVENTHUB": emu.connection_string(), "DEADLETTER_STORAGE": "UseDevelopmentStorage=true",
            "MARKETFLOW_STATE_DB": str(tmp_path / "state.db"), "MARKETFLOW_ACCOUNT_CASH": "10000",
            "MARKETFLOW_COMMIT": "smoke-test-commit"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path / "logs")
    yield s
    s.stop(grace_s=5)


def serve_health(stack: Stack, settings: dict[str, str], name: str = "health") -> str:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTHUB", "MARKETFLOW_", "DEADLETTER"))}
    stack.start(name, [sys.executable, "-c", SERVE, str(ROOT), str(port)], {**env, **settings}, wait_port=port,
                timeout_s=60, cwd=ROOT)
    return f"http://127.0.0.1:{port}/api/health"


def smoke(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The script as the workflow runs it, with the dependencies but not the project importable:
    `-S` skips site (so the editable install's path hook is not loaded) and PYTHONPATH names only
    the virtualenv's site-packages, as `pip install -r requirements.txt -c constraints.txt` leaves a runner."""
    site_packages = sysconfig.get_paths()["purelib"]
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": site_packages, "HOME": os.environ.get("HOME", "/")}
    return subprocess.run([sys.executable, "-S", str(SCRIPT), *args], capture_output=True, text=True, timeout=180,
                          env={**base, **(env or {})}, cwd=cwd)


def test_the_project_is_not_importable_the_way_the_script_runs(tmp_path: Path) -> None:
    """The harness is faithful: without the script's own sys.path entry, `shared` is not found."""
    site_packages = sysconfig.get_paths()["purelib"]
    proc = subprocess.run([sys.executable, "-S", "-c", "import shared"], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": site_packages, "PATH": os.environ.get("PATH", "")}, cwd=tmp_path)
    assert proc.returncode != 0 and "No module named 'shared'" in proc.stderr
    proc = subprocess.run([sys.executable, "-S", "-c", "import azure.eventhub, aiohttp, pydantic"],
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": site_packages, "PATH": os.environ.get("PATH", "")}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_the_smoke_test_sends_its_kline_and_passes_a_healthy_slot(emu: BackgroundEmulator, stack: Stack,
                                                                  tmp_path: Path) -> None:
    url = serve_health(stack, app_settings(emu, tmp_path))
    started_ms = int(time.time() * 1000)
    proc = smoke("--connection-setting", SETTING, "--health", url, "--attempts", "5", "--delay", "0.5",
                 env={SETTING: emu.connection_string()}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("smoke: sent kline ") and f"to {topology.MARKET_DATA.name}" in lines[0]
    assert lines[1] == f"smoke: {url} answered 200"
    assert emu.connection_string() not in proc.stdout + proc.stderr  # the setting's value is never printed
    event_id = lines[0].split()[3]

    got = [e for e in receive(emu.connection_string(topology.MARKET_DATA.name), 1, timeout=20)]
    bodies = [json.loads(e.body_as_str()) for e in got]
    kline = next(b for b in bodies if b["event_id"] == event_id)
    assert kline["symbol"] == "SMOKETEST" and kline["type"] == "kline"
    assert kline["close_time"] - kline["open_time"] == 59_999
    assert abs(kline["open_time"] - started_ms) < 120_000  # the current minute


def test_a_misconfigured_slot_fails_the_smoke_test(emu: BackgroundEmulator, stack: Stack, tmp_path: Path) -> None:
    """`health` answers 503 when a setting is missing (here the dead-letter storage): exit 1, one line."""
    settings = app_settings(emu, tmp_path)
    settings.pop("DEADLETTER_STORAGE")
    url = serve_health(stack, settings)
    proc = smoke("--health", url, "--attempts", "2", "--delay", "0.2")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"smoke: FAILED: {url} did not answer 200 after 2 attempts (last: HTTP 503)"]


def test_no_slot_or_a_wrong_path_fails_the_smoke_test(emu: BackgroundEmulator, stack: Stack, tmp_path: Path) -> None:
    url = serve_health(stack, app_settings(emu, tmp_path))
    wrong = smoke("--health", url.replace("/api/health", "/api/helth"), "--attempts", "2", "--delay", "0.1")
    assert wrong.returncode == 1 and "(last: HTTP 404)" in wrong.stderr
    nobody = smoke("--health", f"http://127.0.0.1:{free_port()}/api/health", "--attempts", "2", "--delay", "0.1")
    assert nobody.returncode == 1 and "(last: URLError)" in nobody.stderr


def test_a_missing_connection_setting_fails_before_sending(tmp_path: Path) -> None:
    proc = smoke("--connection-setting", SETTING, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"smoke: FAILED: environment variable {SETTING} is not set"
    usage = smoke()
    assert usage.returncode == 2 and "give --namespace" in usage.stderr
