"""Telemetry of the Function App: host.json's OpenTelemetry mode, one exporter only, and the batch
duration and event age histograms of the real registered functions, read back through an
in-memory metric reader."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eventhub_host import host_batch, trigger
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from functions import runtime
from shared import telemetry, topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher
from shared.adapters.documents import InMemoryDocumentStore
from shared.adapters.publisher import PublishError
from shared.data import read_klines
from shared.events import Event
from shared.samples import btcusdt_1m_paths

ROOT = Path(__file__).resolve().parents[1]
ENV = {"MARKETFLOW_ACCOUNT_CASH": "10000", "MARKETFLOW_STRATEGY": "sma_cross",
       "MARKETFLOW_STRATEGY_PARAMS": "fast=3 slow=8"}
SECRET = "InstrumentationKey=00000000-1111-2222-3333-444444444444;IngestionEndpoint=https://x/"
WORKER = {"FUNCTIONS_WORKER_RUNTIME": "python", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
          "APPLICATIONINSIGHTS_CONNECTION_STRING": SECRET}


@pytest.fixture
def fresh() -> Iterator[None]:
    telemetry.reset_for_tests()
    yield
    telemetry.reset_for_tests()


def histograms(reader: InMemoryMetricReader, name: str) -> list[HistogramDataPoint]:
    data = reader.get_metrics_data()
    assert data is not None
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            if m.name == name for p in m.data.data_points]


class Runtime:
    def __init__(self, publisher: Any = None) -> None:
        self.reader = InMemoryMetricReader()
        runtime.reset()
        runtime.configure(publisher=publisher or InMemoryPublisher(), dead_letters=InMemoryDeadLetterSink(),
                          documents=InMemoryDocumentStore(), environ=ENV,
                          metrics=telemetry.Metrics(MeterProvider(metric_readers=[self.reader]).get_meter("t")))


@pytest.fixture
def rt() -> Iterator[Runtime]:
    yield Runtime()
    runtime.reset()


def test_host_json_turns_on_opentelemetry_at_its_root() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["telemetryMode"] == "OpenTelemetry"
    assert host["version"] == "2.0"


@pytest.mark.parametrize(("env", "exporter"), [
    ({}, "none"),
    ({"APPLICATIONINSIGHTS_CONNECTION_STRING": SECRET}, "azure_monitor"),  # the executor, the ingestor
    ({"FUNCTIONS_WORKER_RUNTIME": "python", "APPLICATIONINSIGHTS_CONNECTION_STRING": SECRET}, "azure_monitor"),
    (WORKER, "functions_worker"),
    ({**WORKER, "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "false"}, "azure_monitor"),
    ({"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": SECRET},
     "azure_monitor"),  # not in a Functions worker: nobody else exports
])
def test_one_rule_says_who_exports(env: dict[str, str], exporter: str) -> None:
    assert telemetry.exporter_for(env) == exporter


def test_the_functions_process_never_configures_azure_monitor_when_the_worker_exports(
        fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(**kwargs: Any) -> None:
        raise AssertionError("the worker already exports: a second configure_azure_monitor doubles everything")

    monkeypatch.setattr(telemetry, "_configure_azure_monitor", forbidden)
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace

    state = telemetry.setup(environ=WORKER)
    assert state.exporter == "functions_worker"
    assert state.meter_provider is otel_metrics.get_meter_provider()
    assert state.tracer_provider is trace.get_tracer_provider()
    state.metrics.add(telemetry.EVENTS, 1)
    state.metrics.record_batch(0.01, {"hub": "market-data"})


def test_the_deployed_app_settings_let_the_worker_export() -> None:
    """The rule only holds in Azure if the app sets the worker's setting (both stacks)."""
    tf = (ROOT / "terraform" / "modules" / "functions" / "main.tf").read_text()
    bicep = (ROOT / "bicep" / "modules" / "functions.bicep").read_text()
    assert 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY = "true"' in tf
    assert "name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'\n    value: 'true'" in bicep
    assert 'PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME      = "marketflow"' in tf
    assert "name: 'PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME'\n    value: 'marketflow'" in bicep


def test_a_batch_records_its_duration_and_each_events_age(rt: Runtime) -> None:
    klines = [b.to_kline() for b in read_klines(btcusdt_1m_paths()).bars[:40]]
    now_ms = int(time.time() * 1000)
    trigger("signals")(host_batch(klines, partition_id="2", enqueued_ms=[now_ms - 5_000] * len(klines)))
    trigger("positions_marks")(host_batch(klines[:3], partition_id="1", enqueued_ms=[now_ms - 60_000] * 3))

    [batch] = [p for p in histograms(rt.reader, telemetry.BATCH_DURATION) if p.attributes["function"] == "signals"]
    assert dict(batch.attributes) == {"hub": topology.MARKET_DATA.name, "consumer": "signals",
                                      "function": "signals", "partition": "2", "outcome": "ok"}
    assert batch.count == 1 and 0 < batch.sum < 30
    ages = {p.attributes["function"]: p for p in histograms(rt.reader, telemetry.EVENT_AGE)}
    signals, marks = ages["signals"], ages["positions_marks"]
    assert dict(signals.attributes) == {"hub": topology.MARKET_DATA.name, "consumer": "signals",
                                        "function": "signals", "partition": "2"}
    assert signals.count == len(klines)
    assert signals.min >= 5.0 and signals.max < 5.0 + 30
    assert dict(marks.attributes) == {"hub": topology.MARKET_DATA.name, "consumer": "positions",
                                      "function": "positions_marks", "partition": "1"}
    assert marks.count == 3 and marks.min >= 60.0
    assert list(signals.explicit_bounds) == list(telemetry.HISTOGRAMS[telemetry.EVENT_AGE][2])


class FailingPublisher(InMemoryPublisher):
    def publish(self, hub: str, events: Sequence[Event], properties: Any = None) -> None:
        raise PublishError("hub down")


def test_a_batch_that_raises_for_a_retry_is_timed_as_retry_and_ages_nothing() -> None:
    rt = Runtime(FailingPublisher())
    try:
        klines = [b.to_kline() for b in read_klines(btcusdt_1m_paths()).bars[:40]]
        with pytest.raises(PublishError):
            trigger("signals")(host_batch(klines, partition_id="0"))
        [batch] = histograms(rt.reader, telemetry.BATCH_DURATION)
        assert batch.attributes["outcome"] == "retry" and batch.count == 1
        assert histograms(rt.reader, telemetry.EVENT_AGE) == []
    finally:
        runtime.reset()


def _settings(section: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in section.items():
        name = f"{prefix}{key}"
        out.extend(_settings(value, f"{name}.") if isinstance(value, dict) else [name])
    return out


def test_every_event_hubs_setting_in_host_json_is_explained() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    settings = _settings(host["extensions"]["eventHubs"])
    assert "maxEventBatchSize" in settings and "initialOffsetOptions.type" in settings
    docs = (ROOT / "docs" / "functions.md").read_text()
    for name in [*settings, "telemetryMode"]:
        assert f"| `{name}` |" in docs, f"docs/functions.md does not explain host.json {name}"


def gauges(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], float]]:
    """The gauges set since the last collection (a synchronous gauge reports a value once), by name
    and attributes."""
    data = reader.get_metrics_data()
    found: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}
    for m in (m for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics for m in sm.metrics):
        if m.name in telemetry.GAUGES:
            found[m.name] = {tuple(sorted(p.attributes.items())): p.value for p in m.data.data_points}
    return found


def test_positions_sets_the_account_gauges_from_what_it_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `positions` and `positions_marks` functions book a fill and mark it down; the account
    gauges then equal the account document risk reads, and the daily loss share uses the risk settings."""
    import factories

    from shared.adapters.account import AccountStore

    monkeypatch.setenv("MARKETFLOW_RISK_DAILY_LOSS_LIMIT", "200")
    reader, docs = InMemoryMetricReader(), InMemoryDocumentStore()
    runtime.reset()
    runtime.configure(publisher=InMemoryPublisher(), dead_letters=InMemoryDeadLetterSink(), documents=docs,
                      environ=ENV, metrics=telemetry.Metrics(MeterProvider(metric_readers=[reader]).get_meter("t")))
    try:
        report = factories.report()
        trigger("positions")(host_batch([report], partition_id="0"))
        booked = AccountStore(docs).snapshot()
        assert booked is not None
        assert gauges(reader)[telemetry.EQUITY] == {(): pytest.approx(booked[0].equity)}
        trigger("positions_marks")(host_batch([factories.kline(factories.T0 + 120_000, close=6500.0)]))
    finally:
        runtime.reset()
    stored = AccountStore(docs).snapshot()
    assert stored is not None
    account = stored[0]
    qty = report.fills[0].quantity
    assert account.positions["BTCUSDT"][0] == pytest.approx(qty) and account.positions["BTCUSDT"][2] == 6500.0
    loss = account.day_start_equity - account.equity
    assert loss > 50, account  # 0.1386 BTC bought at 7201, marked at 6500: about 97 lost
    assert gauges(reader) == {
        telemetry.EQUITY: {(): pytest.approx(account.equity)},
        telemetry.DAILY_PNL: {(): pytest.approx(-loss)},
        telemetry.DAILY_LOSS_USED: {(): pytest.approx(loss / 200 * 100)},
        telemetry.DRAWDOWN: {(): pytest.approx((account.peak_equity - account.equity) / account.peak_equity * 100)},
        telemetry.EXPOSURE: {(("symbol", "BTCUSDT"),): pytest.approx(qty * 6500.0)},
    }


def test_a_closed_positions_exposure_goes_to_zero() -> None:
    from shared.portfolio import AccountSnapshot

    reader = InMemoryMetricReader()
    metrics = telemetry.Metrics(MeterProvider(metric_readers=[reader]).get_meter("t"))
    held = AccountSnapshot(cash=0.0, equity=1000.0, peak_equity=1000.0, day_start_equity=1000.0, realized_pnl=0.0,
                           positions={"ETHUSDT": (2.0, 400.0, 500.0)}, consecutive_losses=0, time=1)
    metrics.record_account(held, None)
    first = gauges(reader)
    assert first[telemetry.EXPOSURE] == {(("symbol", "ETHUSDT"),): 1000.0}
    assert telemetry.DAILY_LOSS_USED not in first  # unreadable risk settings: not set
    metrics.record_account(held._replace(positions={}, cash=1000.0), 0.0)
    second = gauges(reader)
    assert second[telemetry.EXPOSURE] == {(("symbol", "ETHUSDT"),): 0.0}
    assert second[telemetry.DAILY_LOSS_USED] == {(): 0.0}
    metrics.record_account(held._replace(positions={}, cash=1000.0), 0.0)
    assert telemetry.EXPOSURE not in gauges(reader)  # closed and reported once: no longer set
