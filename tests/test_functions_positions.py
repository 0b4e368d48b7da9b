"""The `positions` Functions and the shared account: the deployed path trades like the replay.

The real registered `signals`, `risk`, `positions` and `positions_marks` functions, fed batches
built through the worker's own Event Hubs converter (tests/eventhub_host.py), chained with the
executor core and paper broker (the AKS executor's components) over the bundled BTCUSDT 1m data:
risk reads the account only from the document positions writes, and the chain closes exactly
the replay's round trips.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from eventhub_host import host_batch, registered, trigger

from functions import runtime
from shared import topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher
from shared.adapters.account import AccountStore, CachedAccount, StoredPositions
from shared.adapters.azure import ConfigurationError
from shared.adapters.documents import DocumentConflict, InMemoryDocumentStore
from shared.adapters.local import SqliteDocumentStore
from shared.adapters.trading_state import DocumentStateStore
from shared.events import DecisionStatus, ExecutionReport, OrderIntent, OrderStatus, RiskDecision, Signal
from shared.execution import Executor, PaperVenue, run_sync
from shared.market import Bar
from shared.pipeline.replay import ReplayResult, run_replay
from shared.pipeline.risk import RiskHandler
from shared.portfolio import PositionBook
from shared.risk import RiskConfig, RiskEngine

STRATEGY = "sma_cross"
PARAMS = {"fast": 10, "slow": 20}
CASH = 10_000.0
COMMISSION = 0.001
ENV = {"MARKETFLOW_ACCOUNT_CASH": str(CASH), "MARKETFLOW_STRATEGY": STRATEGY,
       "MARKETFLOW_STRATEGY_PARAMS": "fast=10 slow=20"}





class Chain:
    """The runtime over in-memory hubs and one shared document store; risk re-reads on every call."""

    def __init__(self, docs: Any | None = None) -> None:
        self.docs = docs if docs is not None else InMemoryDocumentStore()
        self.publisher = InMemoryPublisher()
        self.dead_letters = InMemoryDeadLetterSink()
        self.account = CachedAccount(AccountStore(self.docs), refresh_ms=0)
        self.risk_engine = RiskEngine(RiskConfig(), store=DocumentStateStore(self.docs))
        runtime.reset()
        runtime.configure(publisher=self.publisher, dead_letters=self.dead_letters, documents=self.docs,
                          risk_handler=RiskHandler(self.risk_engine, self.account), environ=ENV)

    def stored_book(self) -> PositionBook:
        loaded = AccountStore(self.docs).load()
        assert loaded is not None
        return loaded[0].book


@pytest.fixture(params=["memory", pytest.param("azurite", marks=pytest.mark.azurite)])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """The chain on the in-memory store and on Blob documents on Azurite (the Functions' store in Azure)."""
    if request.param == "memory":
        yield Chain()
        runtime.reset()
        return
    import contextlib
    import uuid

    from azure.storage.blob import BlobServiceClient

    from shared.adapters.stores import documents_from_settings

    container = f"chain-{uuid.uuid4().hex[:16]}"
    yield Chain(documents_from_settings({"STATE_STORAGE": "UseDevelopmentStorage=true",
                                         "STATE_STORAGE_CONTAINER": container}))
    runtime.reset()
    with contextlib.suppress(Exception):
        BlobServiceClient.from_connection_string("UseDevelopmentStorage=true").delete_container(container)


@pytest.fixture(scope="module")
def replay(bars_1m: list[Bar]) -> ReplayResult:
    return run_replay(bars_1m, STRATEGY, PARAMS, cash=CASH, commission=COMMISSION)


def test_the_app_registers_the_positions_triggers_on_the_topology() -> None:
    import json

    trigger("positions")
    bindings = {name: json.loads(f.get_function_json())["bindings"][0] for name, f in registered().items()}
    assert {"signals", "risk", "positions", "positions_marks"} <= set(bindings)
    assert (bindings["positions"]["eventHubName"],
            bindings["positions"]["consumerGroup"]) == ("executions", "positions")
    assert (bindings["positions_marks"]["eventHubName"],
            bindings["positions_marks"]["consumerGroup"]) == ("market-data", "positions")


def test_the_chain_closes_exactly_the_replays_trades(chain: Chain, bars_1m: list[Bar], replay: ReplayResult) -> None:
    """signals -> risk -> executor (paper) -> positions -> risk, bar by bar, the snapshot fed back."""
    klines = [b.to_kline() for b in bars_1m]
    signals_fn, risk_fn = trigger("signals"), trigger("risk")
    positions_fn, marks_fn = trigger("positions"), trigger("positions_marks")
    for i in range(0, len(klines), 100):
        signals_fn(host_batch(klines[i:i + 100], first_sequence=i))
    signals = chain.publisher.events(topology.SIGNALS.name)
    assert [s.event_id for s in signals] == [s.event_id for s in replay.signals]
    by_bar = {s.bar_open_time: s for s in signals if isinstance(s, Signal)}

    # The executor (AKS) with its own, authoritative layer-2 book: it books its fills itself.
    venue = PaperVenue(commission=COMMISSION)
    exec_book = PositionBook(cash=CASH)
    executor = Executor(venue, RiskEngine(RiskConfig()), exec_book)
    executions: list[ExecutionReport] = []

    def publish(reports: Sequence[ExecutionReport]) -> None:
        for report in reports:
            executions.append(report)
            positions_fn(host_batch([report], first_sequence=len(executions)))  # via hub `executions`

    sent = handled = 0
    for i, (bar, kline) in enumerate(zip(bars_1m, klines, strict=True)):
        if venue.pending:
            for update in venue.on_bar(bar):
                publish(run_sync(executor.on_order_update(update, bar.open_time)))
        exec_book.mark(bar.symbol, bar.close, bar.close_time)
        marks_fn(host_batch([kline], first_sequence=i))
        signal = by_bar.get(bar.open_time)
        if signal is None:
            continue
        risk_fn(host_batch([signal], first_sequence=sent))
        sent += 1
        intents = chain.publisher.events(topology.ORDERS.name)
        for intent in intents[handled:]:
            assert isinstance(intent, OrderIntent)
            _, reports, _ = run_sync(executor.on_intent(intent, bar.close_time))
            publish(reports)
        handled = len(intents)

    book = chain.stored_book()
    assert len(replay.trades) == 127
    assert book.closed_trades == replay.trades
    assert [i.event_id for i in chain.publisher.events(topology.ORDERS.name)] == [i.event_id for i in replay.intents]
    assert chain.dead_letters.all() == []
    account = chain.account()
    assert account.cash == pytest.approx(exec_book.cash)
    assert account.equity == pytest.approx(replay.final_equity)


def test_risk_refuses_loudly_without_an_account(chain: Chain, replay: ReplayResult,
                                                caplog: pytest.LogCaptureFixture) -> None:
    trigger("risk")(host_batch(replay.signals[:1]))
    assert chain.publisher.events(topology.ORDERS.name) == []
    assert chain.dead_letters.all() == []
    assert any("ACCOUNT_UNAVAILABLE" in r.getMessage() or "no account snapshot" in r.getMessage()
               for r in caplog.records if r.levelname == "ERROR")
    # The refusal is a REJECTED decision (observed: logs and the decisions metric).
    decision, intent = chain.account and runtime.risk_handler().on_signal(replay.signals[1])
    assert intent is None and isinstance(decision, RiskDecision)
    assert (decision.status, decision.reasons) == (DecisionStatus.REJECTED, ("ACCOUNT_UNAVAILABLE",))


def test_a_risk_handler_from_settings_without_a_store_refuses_everything(replay: ReplayResult) -> None:
    runtime.reset()
    runtime.configure(environ={})
    try:
        decision, intent = runtime.risk_handler().on_signal(replay.signals[0])
    finally:
        runtime.reset()
    assert intent is None and decision is not None and decision.reasons == ("ACCOUNT_UNAVAILABLE",)


def test_positions_will_not_invent_an_opening_balance(replay: ReplayResult) -> None:
    docs = InMemoryDocumentStore()
    positions = StoredPositions(AccountStore(docs), opening_cash=None)
    with pytest.raises(ConfigurationError, match="MARKETFLOW_ACCOUNT_CASH"):
        positions.begin()


def _fills(replay: ReplayResult) -> list[ExecutionReport]:
    return [r for r in replay.reports if r.fills and r.status is OrderStatus.FILLED]


def test_redelivered_reports_and_marks_change_nothing(chain: Chain, bars_1m: list[Bar], replay: ReplayResult) -> None:
    reports = _fills(replay)[:6]
    positions_fn, marks_fn = trigger("positions"), trigger("positions_marks")
    positions_fn(host_batch(reports))
    marks_fn(host_batch([b.to_kline() for b in bars_1m[:50]]))
    first = chain.docs.get("account/account.json")
    positions_fn(host_batch(reports))  # the host redelivers after a lost checkpoint
    marks_fn(host_batch([b.to_kline() for b in bars_1m[10:40]]))  # late marks: ignored
    again = chain.docs.get("account/account.json")
    assert first is not None and again is not None
    assert again.data["state"] == first.data["state"]
    assert len(chain.stored_book().closed_trades) == 3


def test_two_positions_instances_keep_one_account(replay: ReplayResult) -> None:
    """Instances owning different partitions write one document: compare-and-set, re-applied."""
    docs = InMemoryDocumentStore()
    a = StoredPositions(AccountStore(docs), opening_cash=CASH)
    b = StoredPositions(AccountStore(docs), opening_cash=CASH)
    reports = _fills(replay)[:8]
    a.begin()
    b.begin()  # both start from "no account yet"
    for r in reports[:4]:
        a.on_report(r)
    for r in reports[4:]:
        b.on_report(r)
    a.commit()
    b.commit()  # conflicts with a's write, reloads, re-applies its own reports
    assert b.conflicts == 1
    reference = PositionBook(cash=CASH)
    for r in reports:
        reference.apply(r)
    loaded = AccountStore(docs).load()
    assert loaded is not None
    assert loaded[0].book.snapshot_account() == reference.snapshot_account()


def test_the_sqlite_store_is_compare_and_set(tmp_path: Any) -> None:
    store = SqliteDocumentStore(tmp_path / "state" / "docs.db")
    assert store.get("k") is None
    etag = store.put("k", {"v": 1}, None)
    with pytest.raises(DocumentConflict):
        store.put("k", {"v": 2}, None)
    with pytest.raises(DocumentConflict):
        store.put("k", {"v": 2}, "stale")
    etag2 = store.put("k", {"v": 2}, etag)
    assert store.get("k") == ({"v": 2}, etag2)
    assert SqliteDocumentStore(tmp_path / "state" / "docs.db").etag("k") == etag2  # another process's view


def test_the_kill_switch_reaches_another_engine_within_state_refresh(replay: ReplayResult) -> None:
    docs = InMemoryDocumentStore()
    cfg = RiskConfig().model_copy(update={"state_refresh_s": 1.0})
    a = RiskEngine(cfg, store=DocumentStateStore(docs))
    b = RiskEngine(cfg, store=DocumentStateStore(docs))
    t0 = replay.signals[0].event_time
    assert b.states.current(t0) is b.trading_state
    a.kill("ops:alice", "test", t0)
    assert b.states.current(t0 + 1000).value == "HALTED"
