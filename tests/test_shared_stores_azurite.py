"""The shared stores on the real Blob API (Azurite): ETag compare-and-set, the kill switch across
engines, the account document positions writes and risk reads."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.account import AccountStore, CachedAccount, StoredPositions
from shared.adapters.azure.blob_documents import BlobDocumentStore
from shared.adapters.documents import DocumentConflict
from shared.adapters.stores import documents_from_settings
from shared.adapters.trading_state import DocumentStateStore
from shared.market import Bar
from shared.risk import RiskConfig, RiskEngine, TradingState

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def container() -> Iterator[str]:
    name = f"state-{uuid.uuid4().hex[:16]}"
    yield name
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string("UseDevelopmentStorage=true")
    with contextlib.suppress(Exception):  # never created (a test that failed early)
        service.delete_container(name)


def _store(container: str) -> BlobDocumentStore:
    docs = documents_from_settings({"STATE_STORAGE": "UseDevelopmentStorage=true",
                                    "STATE_STORAGE_CONTAINER": container})
    assert isinstance(docs, BlobDocumentStore)
    return docs


def test_blob_documents_are_compare_and_set_on_the_etag(container: str) -> None:
    a, b = _store(container), _store(container)
    assert a.get("x/doc.json") is None and a.etag("x/doc.json") is None
    etag = a.put("x/doc.json", {"v": 1}, None)  # creates the container on first write
    with pytest.raises(DocumentConflict):
        b.put("x/doc.json", {"v": 9}, None)  # create-only loses: it exists
    etag2 = b.put("x/doc.json", {"v": 2}, etag)
    with pytest.raises(DocumentConflict):
        a.put("x/doc.json", {"v": 3}, etag)  # a's ETag is stale now
    assert a.get("x/doc.json") == ({"v": 2}, etag2)
    assert a.etag("x/doc.json") == etag2


def test_the_kill_switch_from_the_cli_reaches_two_engines_within_state_refresh(container: str) -> None:
    cfg = RiskConfig().model_copy(update={"state_refresh_s": 1.0})
    one = RiskEngine(cfg, store=DocumentStateStore(_store(container)))
    two = RiskEngine(cfg, store=DocumentStateStore(_store(container)))
    t0 = 1_700_000_000_000
    assert one.states.current(t0) is TradingState.ACTIVE and two.states.current(t0) is TradingState.ACTIVE
    env = {**os.environ, "STATE_STORAGE": "UseDevelopmentStorage=true", "STATE_STORAGE_CONTAINER": container,
           "PYTHONPATH": str(ROOT)}
    env.pop("MARKETFLOW_RISK_STATE_FILE", None)
    out = subprocess.run([sys.executable, "-m", "shared.cli", "trading-state", "halt", "--by", "ops:alice",
                          "--reason", "exchange incident"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "trading state: HALTED" in out.stdout
    assert one.states.current(t0 + 999) is TradingState.ACTIVE  # cached until state_refresh_s passes
    assert one.states.current(t0 + 1000) is TradingState.HALTED
    assert two.states.current(t0 + 1000) is TradingState.HALTED
    assert one.states.record.who == "ops:alice"
    # An engine's own change is seen by the other the same way.
    one.set_trading_state("ACTIVE", "ops:bob", "resolved", t0 + 2000)
    assert two.states.current(t0 + 3000) is TradingState.ACTIVE


def test_positions_writes_the_account_risk_reads(container: str) -> None:
    docs = _store(container)
    reader = CachedAccount(AccountStore(_store(container)), refresh_ms=1000, clock=lambda: now[0])
    now = [0]
    with pytest.raises(RuntimeError, match="no account snapshot"):
        reader()
    positions = StoredPositions(AccountStore(docs), opening_cash=5000.0)
    positions.begin()
    bar = Bar("BTCUSDT", "1m", 0, 59_999, 100.0, 101.0, 99.0, 100.5, 1.0)
    positions.on_kline(bar.to_kline())
    positions.commit()
    assert reader().cash == 5000.0 and reader().time == 59_999
    assert reader.reads == 1  # cached: one download, the ETag checked only every refresh_ms
