"""The pieces `marketflow up` is built from: child processes, lag from checkpoints, options."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from devhost.settle import GroupLag, checkpoints, lags
from devhost.stack import Stack, StackError, free_port, port_open
from shared.cli.errors import CliError
from shared.cli.up import Pace, azurite_connection, emulator_connection, parse_pace


def test_children_start_listen_and_stop(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "logs")
    port = free_port()
    child = stack.start("web", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], {},
                        wait_port=port, timeout_s=20)
    assert port_open(port)
    stack.check()
    stack.stop(grace_s=5)
    assert child.process.poll() is not None
    assert not port_open(port)


def test_a_child_that_dies_is_named_with_its_log(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "logs")
    with pytest.raises(StackError, match=r"broken exited with status 3 .*broken\.log"):
        stack.start("broken", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], {},
                    wait_port=free_port(), timeout_s=20)
    assert "boom" in (tmp_path / "logs" / "broken.log").read_text()
    stack.stop()
    stack.start("sleeper", [sys.executable, "-c", "import sys; sys.exit(4)"], {})
    time.sleep(0.5)
    with pytest.raises(StackError, match="sleeper exited with status 4"):
        stack.check()


def test_lags_from_checkpoint_blobs() -> None:
    def blob(name: str, seq: int | None) -> SimpleNamespace:
        return SimpleNamespace(name=name, metadata={} if seq is None else {"sequencenumber": str(seq)})

    container = SimpleNamespace(list_blobs=lambda include: [
        blob("127.0.0.1:5672/market-data/signals/checkpoint/0", 9),
        blob("127.0.0.1:5672/market-data/signals/checkpoint/1", 4),
        blob("127.0.0.1:5672/market-data/signals/ownership/0", None),
        blob("127.0.0.1:5672/signals/risk/checkpoint/0", 2)])
    saved = checkpoints(container)
    assert saved == {("market-data", "signals", "0"): 9, ("market-data", "signals", "1"): 4,
                     ("signals", "risk", "0"): 2}
    heads = {"market-data": {"0": 9, "1": 6, "2": -1}, "signals": {"0": 2, "1": 0}}
    out = {(g.hub, g.group): g.lag for g in lags(heads, {"market-data": ("signals", "executor"),
                                                          "signals": ("risk",)}, [saved])}
    # partition 1: 6 published, 4 done -> 2; executor has no checkpoint: 10 + 7; risk: partition 1 unseen -> 1
    assert out == {("market-data", "signals"): 2, ("market-data", "executor"): 17, ("signals", "risk"): 1}
    assert all(isinstance(g, GroupLag) for g in lags(heads, {}, [saved]))


def test_pace_and_connection_strings() -> None:
    assert parse_pace("lockstep") == Pace(True, 0.0)
    assert parse_pace("realtime") == Pace(False, 1.0)
    assert parse_pace("x60") == Pace(False, 60.0)
    for bad in ("x0", "fast", "x-2", "xabc"):
        with pytest.raises(CliError, match="--pace"):
            parse_pace(bad)
    assert "UseDevelopmentEmulator=true" in emulator_connection(5672)
    conn = azurite_connection(1, 2, 3)
    assert "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1" in conn and "TableEndpoint=http://127.0.0.1:3/" in conn


def test_status_line() -> None:
    from shared.cli.up import status_line

    lags = [GroupLag("market-data", "signals", 0, {"0": 9, "1": -1}), GroupLag("signals", "risk", 2, {"0": 3}),
            GroupLag("orders", "executor", 0, {"0": 1})]
    line = status_line(10, 100, 2.0, lags, "ACTIVE")
    assert line == ("bar 10/100 | market-data 5.0/s signals 2.0/s orders 1.0/s | signals 4 orders 2 reports 0 "
                    "| lag 2 | trading ACTIVE")


class _Hubs:
    """Heads of two 2-partition hubs, counting the reads and which partitions each read asked for."""

    def __init__(self) -> None:
        self.heads_now = {"market-data": {"0": -1, "1": -1}, "signals": {"0": -1, "1": -1}}
        self.reads: list[object] = []

    def heads(self, only: dict[str, list[str]] | None = None) -> dict[str, dict[str, int]]:
        self.reads.append(only)
        if only is None:
            return {h: dict(p) for h, p in self.heads_now.items()}
        return {h: {p: self.heads_now[h][p] for p in pids} for h, pids in only.items()}


class _Blobs:
    def __init__(self) -> None:
        self.saved: dict[str, int] = {}

    def get_container_client(self, name: str) -> SimpleNamespace:
        def list_blobs(include: object = None) -> list[SimpleNamespace]:
            return [SimpleNamespace(name=f"ns/{key}", metadata={"sequencenumber": str(seq)})
                    for key, seq in self.saved.items()] if name == "checkpoints" else []
        return SimpleNamespace(list_blobs=list_blobs)


def test_the_lockstep_settler_reads_heads_only_once_checkpoints_caught_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import topology
    from shared.cli.up import Settler

    monkeypatch.setattr(topology, "CHECKPOINT_CONTAINER", "checkpoints")
    hubs, blobs = _Hubs(), _Blobs()
    groups = {"market-data": ("signals",), "signals": ("risk",)}
    s = Settler(blobs, hubs, groups, {"market-data": 2, "signals": 2})
    hubs.heads_now["market-data"]["1"] = 0
    s.sent("market-data")  # learns the symbol's partition: 1, on both hubs
    assert s.watched == {"market-data": ["1"], "signals": ["1"]}
    reads = len(hubs.reads)
    assert s.check()[0] is False and len(hubs.reads) == reads  # signals group behind: no head read
    blobs.saved["market-data/signals/checkpoint/1"] = 0
    hubs.heads_now["signals"]["1"] = 0  # the signals function published before it checkpointed
    assert s.check()[0] is False and hubs.reads[-1] == {"market-data": ["1"], "signals": ["1"]}
    blobs.saved["signals/risk/checkpoint/1"] = 0
    assert s.check()[0] is True
    hubs.heads_now["market-data"]["1"] = 1
    s.sent("market-data")  # counted, not read
    assert s.known["market-data"]["1"] == 1 and len(hubs.reads) == reads + 2
    blobs.saved["market-data/signals/checkpoint/1"] = 1
    assert s.check()[0] is True
    s.verify()
    hubs.heads_now["signals"]["0"] = 0  # an event where the settler did not look
    with pytest.raises(CliError, match="signals/0"):
        s.verify()


def test_children_keep_the_risk_limits_replay_honours_and_nothing_that_points_elsewhere() -> None:
    from shared.cli.up import child_env

    env = child_env({"PATH": "/bin", "MARKETFLOW_RISK_MAX_SIGNAL_AGE_S": "30", "MARKETFLOW_VENUE": "binance",
                     "MARKETFLOW_STATE_DB": "/x.db", "EVENTHUB": "Endpoint=sb://prod", "AzureWebJobsStorage": "x"})
    assert env == {"PATH": "/bin", "MARKETFLOW_RISK_MAX_SIGNAL_AGE_S": "30"}
