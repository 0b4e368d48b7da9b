"""`MARKETFLOW_VENUE=binance`: the executor process trades through the strict fake Binance
(python-binance's AsyncClient on loopback), with the repo's Event Hubs emulator and Azurite: an
intent becomes one order at the fake and a FILLED report on `executions`; a restart on the same
state directory recognizes the redelivered intent and sends nothing; the keys never show."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
from fake_binance import DOC_API_KEY, DOC_SECRET, FakeBinanceThread

from emulator import BackgroundEmulator, from_hubs
from shared import topology
from tests.executor_process import Replica, wait_for
from tests.test_executor_emulator import AZURITE, intent_after, kline, reports, send

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def emu():
    with BackgroundEmulator(from_hubs(topology.HUBS.values()), port=0, health_port=0) as e:
        yield e


def test_binance_venue_one_order_per_intent_across_a_restart(emu, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    with FakeBinanceThread() as fake:
        fake.add_hmac_account(DOC_API_KEY, DOC_SECRET, {"USDT": "10000"})
        env = {"EVENTHUB": emu.connection_string(), "CHECKPOINT_STORAGE": AZURITE, "DEADLETTER_STORAGE": AZURITE,
               "MARKETFLOW_VENUE": "binance", "BINANCE_BASE_URL": fake.base_url, "BINANCE_API_KEY": DOC_API_KEY,
               "BINANCE_API_SECRET": DOC_SECRET, "MARKETFLOW_STATE_DIR": str(tmp_path / "state"),
               "MARKETFLOW_LEASE_NAME": f"executor-{tag}", "MARKETFLOW_CHECKPOINT_CONTAINER": f"ckpt-{tag}",
               "MARKETFLOW_LEASE_RETRY_S": "0.2", "MARKETFLOW_LOAD_BALANCING_S": "1",
               "MARKETFLOW_RISK_MAX_SIGNAL_AGE_S": "0", "MARKETFLOW_RISK_STALE_MARKET_DATA_S": "0",
               "MARKETFLOW_RISK_PRICE_BAND_PCT": "0", "LOG_LEVEL": "DEBUG"}
        a = Replica(env, tmp_path / "a.log")
        try:
            wait_for(a.ready, 40.0)
            time.sleep(1.0)  # the receivers start at the latest event: let their links open
            bar = kline(1_577_836_800_000, 60000.0)
            intent = intent_after(bar)
            send(emu.connection_string(), topology.MARKET_DATA.name, bar)
            time.sleep(0.3)
            send(emu.connection_string(), topology.ORDERS.name, intent)
            (report,) = wait_for(lambda: reports(emu, 1), 20.0)
            assert report.venue == "binance" and report.status.value == "FILLED"
            assert report.intent_id == intent.event_id
            (order,) = fake.orders
            assert order.client_order_id == report.client_order_id and order.type == "MARKET"
            _status, metrics = a.get("/metrics")
            assert "marketflow_executor_weight_used" in metrics and 'outcome="FILLED"} 1.0' in metrics
            assert a.checks() == {"consumer_connected": True, "time_synced": True, "not_banned": True,
                                  "lease_held": True}
            a.proc.send_signal(signal.SIGTERM)
            assert a.proc.wait(timeout=15) == 0
        finally:
            a.stop()

        b = Replica(env, tmp_path / "b.log")  # a restart on the same intent store
        try:
            wait_for(b.ready, 40.0)
            time.sleep(1.0)
            send(emu.connection_string(), topology.ORDERS.name, intent)  # redelivered
            wait_for(lambda: 'marketflow_executor_events_total{hub="orders",outcome="ok"} 1.0' in b.get("/metrics")[1],
                     20.0)  # consumed, and answered by the intent store
            assert len(fake.orders) == 1 and not fake.duplicates()
            b.proc.send_signal(signal.SIGTERM)
            assert b.proc.wait(timeout=15) == 0
        finally:
            b.stop()
    for log in (a.log, b.log):
        text = log.read_text()
        assert DOC_SECRET not in text and DOC_API_KEY not in text
