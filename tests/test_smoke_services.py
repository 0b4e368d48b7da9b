"""The AKS deploy smoke check and the executor's readiness, against the real HTTP apps on loopback.

A standby executor (no lease, so no consumer) answers plain `/readyz` 503 by design; the chart's
readiness probe must therefore be one a standby passes, or the second replica is never Ready: a
rolling update with maxUnavailable 0 waits for it forever (`helm upgrade --atomic --wait` times out
and rolls back) and the PodDisruptionBudget (minAvailable 1) blocks every node drain. Here: the
probe path the chart renders, asked of the real executor app in each role; scripts/smoke_services.py
on real executor and ingestor endpoints; scripts/smoke_aks.sh with a stand-in `kubectl` whose
`port-forward` relays to them (no cluster here).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import infra
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from aks_executor.app import ACTIVE_ONLY
from aks_executor.metrics import ExecutorMetrics
from devhost.stack import free_port
from shared.adapters.ops_http import HttpServer, Readiness, build_app

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scripts" / "smoke_services.py"
SMOKE_AKS = ROOT / "scripts" / "smoke_aks.sh"


class Replica:
    """One executor's readiness checks, changeable while it serves."""

    def __init__(self, *, lease: bool, banned: bool = False) -> None:
        self.lease, self.banned = lease, banned

    def readiness(self) -> Readiness:
        return Readiness(active_only=ACTIVE_ONLY, consumer_connected=lambda: self.lease, time_synced=lambda: True,
                         not_banned=lambda: not self.banned, lease_held=lambda: self.lease)


class Loop:
    """An event loop on a thread, serving the apps the test starts."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stops: list[Callable[[], Any]] = []

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def executor(self, replica: Replica) -> str:
        async def start() -> tuple[web.AppRunner, int]:
            runner = web.AppRunner(build_app(ExecutorMetrics().registry, replica.readiness()))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            return runner, int(runner.addresses[0][1])

        runner, port = self.run(start())
        self.stops.append(runner.cleanup)
        return f"http://127.0.0.1:{port}"

    def ingestor(self, ready: Callable[[], bool]) -> str:
        server = HttpServer(build_app(CollectorRegistry(), Readiness(streams_connected=ready)), "127.0.0.1", 0)
        self.run(server.start())
        self.stops.append(server.stop)
        return f"http://127.0.0.1:{server.port}"

    def close(self) -> None:
        for stop in self.stops:
            self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def executor_probe_path() -> str:
    docs = infra.render_chart(infra.CHART / "values-dev.yaml")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "marketflow-executor"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    path: str = container["readinessProbe"]["httpGet"]["path"]
    return path


def test_the_charts_probe_is_ready_on_a_standby_and_plain_readyz_only_on_the_holder(loop: Loop) -> None:
    probe = executor_probe_path()
    active, standby, banned = Replica(lease=True), Replica(lease=False), Replica(lease=False, banned=True)
    urls = {name: loop.executor(r) for name, r in (("active", active), ("standby", standby), ("banned", banned))}
    assert status(urls["standby"] + probe) == 200, "the second replica would never be Ready"
    assert status(urls["standby"] + "/readyz") == 503
    assert status(urls["active"] + probe) == 200 and status(urls["active"] + "/readyz") == 200
    assert status(urls["banned"] + probe) == 503  # a banned replica is not fit to take over


def smoke(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SMOKE), *args, "--every", "0.2"], capture_output=True, text=True,
                          timeout=timeout)


def test_one_holder_a_ready_standby_and_a_ready_ingestor_pass(loop: Loop) -> None:
    a, b = loop.executor(Replica(lease=True)), loop.executor(Replica(lease=False))
    ingestor = loop.ingestor(lambda: True)
    proc = smoke("--executor", a, "--executor", b, "--ingestor", ingestor, "--timeout", "5")
    assert proc.returncode == 0, proc.stderr
    assert f"smoke: executor {b}: readyz?standby=ok 200, readyz 503 (standby)" in proc.stdout
    assert f"smoke: executor {a}: readyz?standby=ok 200, readyz 200 (active)" in proc.stdout


def test_no_lease_holder_or_an_unready_ingestor_fails(loop: Loop) -> None:
    a, b = loop.executor(Replica(lease=False)), loop.executor(Replica(lease=False))
    proc = smoke("--executor", a, "--executor", b, "--timeout", "1")
    assert proc.returncode == 1
    assert "executor: 0 replicas hold the lease and consume (want exactly 1)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "smoke: FAILED after 1 s"
    down = loop.ingestor(lambda: False)
    proc = smoke("--ingestor", down, "--timeout", "1")
    assert proc.returncode == 1 and f"ingestor {down}: readyz 503" in proc.stderr
    proc = smoke("--executor", f"http://127.0.0.1:{free_port()}", "--timeout", "1")
    assert proc.returncode == 1 and "readyz no answer" in proc.stderr


def test_a_takeover_during_the_retries_passes(loop: Loop) -> None:
    """Right after a rollout the new holder needs a moment to take the lease: retried, not failed."""
    taking_over = Replica(lease=False)
    a, b = loop.executor(taking_over), loop.executor(Replica(lease=False))
    threading.Timer(1.0, lambda: setattr(taking_over, "lease", True)).start()
    started = time.monotonic()
    proc = smoke("--executor", a, "--executor", b, "--timeout", "20")
    assert proc.returncode == 0, proc.stderr
    assert 0.9 < time.monotonic() - started < 15


FAKE_KUBECTL = """\
#!{python}
# Stand-in kubectl: `get pods -l ...name=<service>` lists FAKE_<SERVICE>_PODS ("pod=port,..."),
# `port-forward pod/<pod> <local>:8000` relays <local> to that pod's port on loopback.
import asyncio, os, sys

def pods(service):
    raw = os.environ.get(f"FAKE_{{service.upper()}}_PODS", "")
    return dict(p.split("=") for p in raw.split(",") if p)

args = sys.argv[1:]
if "get" in args:
    selector = args[args.index("-l") + 1]
    assert "app.kubernetes.io/instance=marketflow" in selector, selector
    service = selector.rsplit("app.kubernetes.io/name=", 1)[1]
    assert "deletionTimestamp" in args[args.index("-o") + 1]
    print("\\n".join(pods(service)))
elif "port-forward" in args:
    i = args.index("port-forward")
    pod, local = args[i + 1].removeprefix("pod/"), int(args[i + 2].split(":")[0])
    target = int({{**pods("executor"), **pods("ingestor")}}[pod])

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", local)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
else:
    sys.exit(f"unexpected kubectl call: {{args}}")
"""


def smoke_aks(tmp_path: Path, executors: dict[str, str], ingestors: dict[str, str]) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(textwrap.dedent(FAKE_KUBECTL.format(python=sys.executable)))
    kubectl.chmod(0o755)
    python3 = bin_dir / "python3"  # the runner's python3: this interpreter
    if not python3.exists():
        python3.symlink_to(sys.executable)

    def spec(pods: dict[str, str]) -> str:
        return ",".join(f"{pod}={url.rsplit(':', 1)[1]}" for pod, url in pods.items())

    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_EXECUTOR_PODS": spec(executors),
           "FAKE_INGESTOR_PODS": spec(ingestors), "SMOKE_TIMEOUT": "10", "SMOKE_FIRST_PORT": str(free_port())}
    return subprocess.run(["bash", str(SMOKE_AKS), "marketflow"], capture_output=True, text=True, timeout=90, env=env)


def test_smoke_aks_forwards_every_pod_and_checks_them(loop: Loop, tmp_path: Path) -> None:
    executors = {"executor-a": loop.executor(Replica(lease=False)), "executor-b": loop.executor(Replica(lease=True))}
    ingestors = {"ingestor-a": loop.ingestor(lambda: True)}
    proc = smoke_aks(tmp_path, executors, ingestors)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and "readyz 200 (active)" in lines[1] and "(standby)" in lines[0], lines
    assert lines[2].startswith("smoke: ingestor http://127.0.0.1:") and lines[2].endswith("readyz 200")


def test_smoke_aks_fails_without_a_holder_or_without_pods(loop: Loop, tmp_path: Path) -> None:
    executors = {"executor-a": loop.executor(Replica(lease=False)), "executor-b": loop.executor(Replica(lease=False))}
    proc = smoke_aks(tmp_path, executors, {})
    assert proc.returncode == 1 and "0 replicas hold the lease" in proc.stderr
    proc = smoke_aks(tmp_path, {}, {})
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("smoke: FAILED: no running executor or ingestor pod of release marketflow in "
                                   "marketflow")
