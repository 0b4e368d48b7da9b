"""The executor end to end on the repo's Event Hubs emulator (stock SDK) and Azurite: real
processes trade an intent from `orders` into a report on `executions`, hand over on SIGTERM, and
fail over when the active replica is killed. The figures printed (-s) are the README's.

Each replica: Blob lease on Azurite (unique name), checkpoints in a unique container, greedy load
balancing every 1 s (a dead owner's partitions free up after 6 s), standby retry 0.2 s.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
from azure.eventhub import EventData, EventHubProducerClient

from emulator import BackgroundEmulator, from_hubs
from shared import topology
from shared.events import ExecutionReport, Kline, OrderIntent, OrderStatus, Side, Signal, decode, encode
from tests.emulator_support import receive
from tests.executor_process import Replica, wait_for

pytestmark = pytest.mark.azurite
T0 = 1_577_836_800_000
# The checkpoint store's vendored blob client does not read "UseDevelopmentStorage=true".
AZURITE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
           "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
           "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")


def kline(open_time: int, price: float, symbol: str = "BTCUSDT") -> Kline:
    return Kline.create(symbol=symbol, interval="1m", open_time=open_time, close_time=open_time + 59_999,
                        open=price, high=price + 5, low=price - 5, close=price, volume=3.0)


def intent_after(bar: Kline) -> OrderIntent:
    s = Signal.create(symbol=bar.symbol, strategy="sma_cross", side=Side.BUY, price=bar.close,
                      bar_open_time=bar.open_time, bar_close_time=bar.close_time, market_event_id=bar.event_id,
                      correlation_id=bar.correlation_id)
    return OrderIntent(event_id=OrderIntent.make_id(s.event_id), correlation_id=s.correlation_id,
                       event_time=s.event_time, symbol=s.symbol, strategy=s.strategy, side=s.side,
                       quote_quantity=100.0, reference_price=s.price, signal_id=s.event_id)


def send(conn: str, hub: str, *events) -> None:
    with EventHubProducerClient.from_connection_string(conn, eventhub_name=hub) as producer:
        batch = producer.create_batch(partition_key=events[0].symbol)
        for e in events:
            batch.add(EventData(encode(e)))
        producer.send_batch(batch)


def trade_once(conn: str, minute: int, symbol: str = "BTCUSDT") -> OrderIntent:
    """A bar, an intent after it and the next bar (which fills it on the paper venue)."""
    bar = kline(T0 + minute * 60_000, 7200.0 + minute, symbol)
    intent = intent_after(bar)
    send(conn, topology.MARKET_DATA.name, bar)
    time.sleep(0.3)
    send(conn, topology.ORDERS.name, intent)
    time.sleep(0.3)
    send(conn, topology.MARKET_DATA.name, kline(bar.open_time + 60_000, 7201.0 + minute, symbol))
    return intent


@pytest.fixture(scope="module")
def emu():
    with BackgroundEmulator(from_hubs(topology.HUBS.values()), port=0, health_port=0) as e:
        yield e


def service_env(emu: BackgroundEmulator, tag: str) -> dict[str, str]:
    return {
        "EVENTHUB": emu.connection_string(), "CHECKPOINT_STORAGE": AZURITE,
        "DEADLETTER_STORAGE": AZURITE, "MARKETFLOW_LEASE_NAME": f"executor-{tag}",
        "MARKETFLOW_CHECKPOINT_CONTAINER": f"ckpt-{tag}", "MARKETFLOW_LEASE_RETRY_S": "0.2",
        "MARKETFLOW_LOAD_BALANCING_S": "1", "MARKETFLOW_SHUTDOWN_GRACE_S": "10",
        "MARKETFLOW_RISK_MAX_SIGNAL_AGE_S": "0", "MARKETFLOW_RISK_STALE_MARKET_DATA_S": "0",
        "MARKETFLOW_RISK_PRICE_BAND_PCT": "0"}


def replica(emu: BackgroundEmulator, tag: str, name: str, tmp_path: Path) -> Replica:
    return Replica(service_env(emu, tag), tmp_path / f"{name}.log")


def reports(emu: BackgroundEmulator, count: int) -> list[ExecutionReport]:
    got = receive(emu.connection_string(topology.EXECUTIONS.name), count, timeout=15.0)
    return [r for r in (decode(e.body_as_str().encode()) for e in got) if isinstance(r, ExecutionReport)]


def test_one_active_replica_trades_hands_over_on_sigterm_and_fails_over_when_killed(emu, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    a = replica(emu, tag, "a", tmp_path)
    b = c = None
    try:
        wait_for(a.ready, 30.0)
        b = replica(emu, tag, "b", tmp_path)
        wait_for(lambda: b.checks() is not None, 30.0)
        time.sleep(1.0)  # the receivers start at the latest event: let their links open
        first = trade_once(emu.connection_string(), 0)
        (report,) = wait_for(lambda: reports(emu, 1), 20.0)
        assert report.intent_id == first.event_id and report.status is OrderStatus.FILLED
        assert b.checks() == {"consumer_connected": False, "time_synced": True, "not_banned": True,
                              "lease_held": False}

        # SIGTERM: A drains, checkpoints, releases; B takes the lease and every partition.
        a.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert a.proc.wait(timeout=15) == 0
        exited = time.monotonic() - sent
        wait_for(b.ready, 30.0, step=0.02)
        handover = time.monotonic() - sent

        # SIGKILL: B dies holding the lease and the partitions; C waits for both to lapse.
        c = replica(emu, tag, "c", tmp_path)
        wait_for(lambda: c.checks() is not None, 30.0)
        b.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        b.proc.wait(timeout=5)
        wait_for(c.ready, 40.0, step=0.05)
        failover = time.monotonic() - killed
        time.sleep(1.0)
        # The account moved with the lease: C restored the book (long BTC) from the intent store,
        # so a second BTC BUY would be refused (POSITION_OPEN); it buys ETH.
        second = trade_once(emu.connection_string(), 10, "ETHUSDT")
        got = wait_for(lambda: (lambda r: r if len(r) >= 2 else None)(reports(emu, 2)), 20.0)
        # Each order once (two symbols, two partitions: no order between them).
        assert sorted(r.intent_id for r in got) == sorted([first.event_id, second.event_id])
        print(f"executor on the emulator: SIGTERM exit {exited:.2f} s, standby ready {handover:.2f} s after "
              f"the signal; holder killed: standby ready {failover:.1f} s later (lease 15 s, ownership 6 s)")
        assert handover < 10.0
        assert 9.0 < failover < 30.0  # the lease lapses 10-15 s after the last renewal (every 5 s)
        epochs = [r["msg"] for r in c.records() if "acquired" in r.get("msg", "")]
        assert epochs and "epoch 3" in epochs[0]
    finally:
        for r in (a, b, c):
            if r is not None:
                r.stop()


AZURITE_TABLES = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                  "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                  "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;")


def reports_for(emu: BackgroundEmulator, *intents: OrderIntent) -> list[ExecutionReport] | None:
    """The reports of these intents (the module's emulator also holds the other tests' reports)."""
    ids = {i.event_id for i in intents}
    got = [r for r in reports(emu, 100) if r.intent_id in ids]
    return got if len(got) >= len(ids) else None


def test_table_intent_store_moves_the_account_with_the_lease(emu, tmp_path: Path) -> None:
    """AKS runs the replicas on emptyDir state: only the Table store is shared. A standby with its
    own (empty) state dir takes over and finds the book there: a second BTC BUY is refused as
    POSITION_OPEN (layer 2's decision, logged), where a fresh book would fill it."""
    tag = uuid.uuid4().hex[:10]
    table = {"MARKETFLOW_INTENT_STORE": "table", "INTENT_STORAGE": AZURITE_TABLES,
             "MARKETFLOW_INTENT_TABLE": f"intents{tag}"}
    a = Replica({**service_env(emu, tag), **table, "MARKETFLOW_STATE_DIR": str(tmp_path / "state-a")},
                tmp_path / "a.log")
    b = None
    try:
        wait_for(a.ready, 30.0)
        time.sleep(3.0)  # the receivers start at the latest event: let their links open (slow under load)
        first = trade_once(emu.connection_string(), 100)  # minutes of its own: ids unlike the other test's
        (filled,) = wait_for(lambda: reports_for(emu, first), 40.0)
        assert filled.status is OrderStatus.FILLED
        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(timeout=15) == 0
        b = Replica({**service_env(emu, tag), **table, "MARKETFLOW_STATE_DIR": str(tmp_path / "state-b")},
                    tmp_path / "b.log")
        wait_for(b.ready, 30.0, step=0.05)
        time.sleep(3.0)  # the receivers start at the latest event: let their links open (slow under load)
        second = trade_once(emu.connection_string(), 110)

        def refused() -> list[str]:
            return [r["msg"] for r in b.records()
                    if second.event_id in r.get("msg", "") and "risk decision" in r.get("msg", "")]

        (decision,) = wait_for(refused, 40.0)
        assert decision.endswith("REJECTED POSITION_OPEN")
        assert not (tmp_path / "state-b" / "intents.sqlite3").exists()
    finally:
        for r in (a, b):
            if r is not None:
                r.stop()


def test_a_halt_from_the_cli_reaches_the_executors_last_look(emu, tmp_path: Path) -> None:
    """STATE_STORAGE is the trading-state document every Function instance reads: `marketflow
    trading-state halt` there makes the executor's last look refuse the next intent."""
    import os
    import subprocess
    import sys

    tag = uuid.uuid4().hex[:10]
    state = {"STATE_STORAGE": "UseDevelopmentStorage=true", "STATE_STORAGE_CONTAINER": f"state-{tag}",
             "MARKETFLOW_RISK_STATE_REFRESH_S": "0.5"}
    a = Replica({**service_env(emu, tag), **state}, tmp_path / "a.log")
    try:
        wait_for(a.ready, 30.0)
        env = {**os.environ, **state, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        env.pop("MARKETFLOW_RISK_STATE_FILE", None)
        out = subprocess.run([sys.executable, "-m", "shared.cli", "trading-state", "halt", "--by", "ops:test",
                              "--reason", "drill"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        time.sleep(3.0)  # past state_refresh_s, and the receivers' links open
        intent = trade_once(emu.connection_string(), 200)  # minutes of its own: ids unlike the other tests'

        def decided() -> list[str]:
            return [r["msg"] for r in a.records()
                    if intent.event_id in r.get("msg", "") and "risk decision" in r.get("msg", "")]

        (decision,) = wait_for(decided, 40.0)
        assert "REJECTED TRADING_HALTED" in decision
    finally:
        a.stop()
