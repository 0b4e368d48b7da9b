"""`python -m aks_executor` as a real process: two replicas share a Blob lease on Azurite, the
standby takes over when the active one is sent SIGTERM, every log line is JSON, and no secret
reaches a log line, a metric or a probe body.

No Event Hubs runs here: `EVENTHUB` names a closed port, so the consumers never connect and
`/readyz` stays 503 on `consumer_connected` (the other checks are real). The failover figure
printed (-s) is the one the README quotes.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests import executor_process
from tests.executor_process import free_port, wait_for

SAS_KEY = "c2VjcmV0LXNhcy1rZXktZm9yLXRoZS1ldmVudC1odWJzLW5hbWVzcGFjZQ=="
# Azurite's well-known account key: public, but a key all the same, and it must not be printed.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BINANCE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SECRETS = (SAS_KEY, ACCOUNT_KEY, BINANCE_KEY, BINANCE_SECRET)


class Replica(executor_process.Replica):
    def __init__(self, lease_name: str, eventhub_port: int, log: Path) -> None:
        storage = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
                   "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
        super().__init__({
            "EVENTHUB": f"Endpoint=sb://127.0.0.1:{eventhub_port};SharedAccessKeyName=RootManageSharedAccessKey;"
                        f"SharedAccessKey={SAS_KEY};UseDevelopmentEmulator=true",
            "CHECKPOINT_STORAGE": storage, "DEADLETTER_STORAGE": storage,
            "BINANCE_API_KEY": BINANCE_KEY, "BINANCE_API_SECRET": BINANCE_SECRET,
            "MARKETFLOW_LEASE_NAME": lease_name, "MARKETFLOW_LEASE_RETRY_S": "0.2",
            "MARKETFLOW_SHUTDOWN_GRACE_S": "10", "LOG_LEVEL": "DEBUG"}, log)


@pytest.mark.azurite
def test_two_replicas_one_lease_sigterm_hands_over_and_no_secret_is_ever_printed(tmp_path: Path) -> None:
    lease = f"executor-{uuid.uuid4().hex[:12]}"
    hub_port = free_port()  # nothing listens there once the probe socket is closed
    a = Replica(lease, hub_port, tmp_path / "a.log")
    try:
        wait_for(lambda: (a.checks() or {}).get("lease_held"), 20.0)
        b = Replica(lease, hub_port, tmp_path / "b.log")
        try:
            wait_for(lambda: b.checks() is not None, 20.0)
            assert a.get("/healthz")[0] == b.get("/healthz")[0] == 200
            status, body = a.get("/readyz")
            assert status == 503 and json.loads(body)["checks"] == {
                "consumer_connected": False, "time_synced": True, "not_banned": True, "lease_held": True}
            time.sleep(0.5)
            assert b.checks() == {"consumer_connected": False, "time_synced": True, "not_banned": True,
                                  "lease_held": False}  # the standby
            texts = [a.get("/metrics")[1], b.get("/metrics")[1], a.get("/readyz")[1], b.get("/readyz")[1]]
            assert "marketflow_executor_lease_held 1.0" in texts[0]
            assert "marketflow_executor_lease_held 0.0" in texts[1]

            a.proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            assert a.proc.wait(timeout=10) == 0
            exited = time.monotonic() - sent
            wait_for(lambda: (b.checks() or {}).get("lease_held"), 10.0, step=0.01)
            failover = time.monotonic() - sent
            print(f"executor SIGTERM: exit after {exited:.2f} s; standby held the lease {failover:.2f} s "
                  "after the signal (standby retry 0.2 s)")
            assert failover < 3.0
            texts.append(b.get("/metrics")[1])
            assert "marketflow_executor_lease_epoch 2.0" in texts[-1]
            b.proc.send_signal(signal.SIGTERM)
            assert b.proc.wait(timeout=10) == 0
        finally:
            b.stop()
    finally:
        a.stop()

    lines = [line for log in (a.log, b.log) for line in log.read_text().splitlines()]
    assert len(lines) >= 8
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    msgs = [r["msg"] for r in records]
    assert any("acquired (epoch 1)" in m for m in msgs) and any("acquired (epoch 2)" in m for m in msgs)
    assert any("released (epoch 1)" in m for m in msgs)
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    for text in [*lines, *texts]:
        for secret in SECRETS:
            assert secret not in text
        assert "AccountKey=" not in text and "SharedAccessKey=" not in text
