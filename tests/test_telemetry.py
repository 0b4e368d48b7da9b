"""Telemetry: real OTel counters (read back through an InMemoryMetricReader), set up once."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared import telemetry
from shared.data import read_klines
from shared.pipeline.replay import run_replay
from shared.samples import btcusdt_1m_paths


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def metrics(reader: InMemoryMetricReader) -> telemetry.Metrics:
    return telemetry.Metrics(MeterProvider(metric_readers=[reader]).get_meter("test"))


@pytest.fixture
def fresh() -> Iterator[None]:
    telemetry.reset_for_tests()
    yield
    telemetry.reset_for_tests()


def test_add_and_add_many(metrics: telemetry.Metrics, reader: InMemoryMetricReader) -> None:
    metrics.add(telemetry.EVENTS, 3, {"hub": "market-data", "outcome": "ok"})
    metrics.add_many([
        (telemetry.EVENTS, 2, {"hub": "market-data", "outcome": "ok"}),
        (telemetry.EVENTS, 1, {"outcome": "ok", "hub": "market-data"}),  # same set, other order
        (telemetry.DEAD_LETTERS, 4, {"error_type": "MalformedEvent"}),
        (telemetry.FILLS, 0, None),  # zero is not recorded
    ])
    counts = telemetry.collect_counts(reader)
    assert counts[(telemetry.EVENTS, frozenset({("hub", "market-data"), ("outcome", "ok")}))] == 6
    assert telemetry.total(counts, telemetry.DEAD_LETTERS, error_type="MalformedEvent") == 4
    assert telemetry.total(counts, telemetry.FILLS) == 0


def test_unknown_metric_and_negative_values_fail_loudly(metrics: telemetry.Metrics) -> None:
    with pytest.raises(KeyError, match="unknown metric"):
        metrics.add("marketflow.event", 1)
    with pytest.raises(ValueError):
        metrics.add(telemetry.SIGNALS, -1)


def test_record_outputs_counts_a_whole_replay_in_bulk(metrics: telemetry.Metrics,
                                                       reader: InMemoryMetricReader) -> None:
    bars = read_klines(btcusdt_1m_paths()[:1]).bars
    # The replay hot path keeps plain lists and ints and hands them over in bulk at the end.
    result = run_replay([*bars, bars[5]], "sma_cross", {"fast": 10, "slow": 20}, metrics=metrics)
    assert result.signals and result.fills

    counts = telemetry.collect_counts(reader)
    assert telemetry.total(counts, telemetry.EVENTS, consumer="replay", outcome="ok") == len(bars)
    assert telemetry.total(counts, telemetry.EVENTS, consumer="replay", outcome="duplicate") == 1
    assert telemetry.total(counts, telemetry.TRADING_STATE, state="ACTIVE") == 0
    assert telemetry.total(counts, telemetry.SIGNALS) == len(result.signals)
    assert telemetry.total(counts, telemetry.SIGNALS, side="BUY") == sum(
        1 for s in result.signals if s.side.value == "BUY")
    # Decision events (rejections, reductions) plus the approvals the engine counted.
    by_status = Counter((str(d.layer), d.status.value) for d in result.decisions)
    for layer in ("1", "2"):
        by_status[(layer, "APPROVED")] = result.risk[f"layer{layer}"]["approved"]
    assert by_status[("1", "APPROVED")] == by_status[("2", "APPROVED")] == len(result.intents) > 0
    for (layer, status), n in by_status.items():
        assert telemetry.total(counts, telemetry.DECISIONS, layer=layer, status=status) == n
    assert telemetry.total(counts, telemetry.DECISIONS) == sum(by_status.values())
    assert telemetry.total(counts, telemetry.FILLS) == sum(len(r.fills) for r in result.reports)
    assert telemetry.total(counts, telemetry.FILLS, venue="paper") == telemetry.total(counts, telemetry.FILLS)


def test_decision_attributes_use_the_first_reason_code() -> None:
    from shared.events import DecisionStatus, RiskDecision

    d = RiskDecision.create(layer=1, subject_id="s" * 32, symbol="BTCUSDT", status=DecisionStatus.REJECTED,
                            reasons=("NO_POSITION", "TRADING_HALTED"), detail="", correlation_id="c" * 32,
                            event_time=0)
    assert telemetry.decision_attributes(d) == {"layer": "1", "status": "REJECTED", "reason": "NO_POSITION"}


def test_local_setup_exports_nothing_and_happens_once(fresh: None, reader: InMemoryMetricReader,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(**kwargs: Any) -> None:
        raise AssertionError("Azure Monitor must not be configured without a connection string")

    monkeypatch.setattr(telemetry, "_configure_azure_monitor", forbidden)
    state = telemetry.setup(service_name="mf-test", metric_readers=[reader], environ={})
    assert state.exporter == "none"
    assert telemetry.setup(environ={"APPLICATIONINSIGHTS_CONNECTION_STRING": "x"}) is state
    assert telemetry.get() is state
    telemetry.metrics().add(telemetry.SIGNALS, 2, {"side": "BUY", "strategy": "sma_cross"})
    with telemetry.tracer().start_as_current_span("unit"):
        pass
    assert telemetry.total(telemetry.collect_counts(reader), telemetry.SIGNALS, side="BUY") == 2


def test_azure_monitor_when_the_connection_string_is_set_and_it_is_never_logged(
        fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    secret = "InstrumentationKey=00000000-1111-2222-3333-444444444444;IngestionEndpoint=https://x/"
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(telemetry, "_configure_azure_monitor", lambda **kw: calls.append(kw))
    caplog.set_level(logging.DEBUG)
    state = telemetry.setup(environ={"APPLICATIONINSIGHTS_CONNECTION_STRING": secret,
                                     "OTEL_SERVICE_NAME": "marketflow-functions"})
    assert state.exporter == "azure_monitor"
    assert state.service_name == "marketflow-functions"
    [kwargs] = calls
    assert kwargs["connection_string"] == secret
    assert kwargs["resource"].attributes["service.name"] == "marketflow-functions"
    state.metrics.add(telemetry.EVENTS, 1)  # counters work on whatever provider the distro set
    assert "telemetry set up" in caplog.text
    assert "00000000-1111" not in caplog.text
    assert "InstrumentationKey" not in caplog.text


def test_the_trading_state_is_a_gauge(metrics: telemetry.Metrics, reader: InMemoryMetricReader) -> None:
    from shared.risk import RiskEngine

    engine = RiskEngine()
    engine.kill("alice", "drill", now=1)
    metrics.record_risk(engine.counters())
    counts = telemetry.collect_counts(reader)
    assert telemetry.total(counts, telemetry.TRADING_STATE, state="HALTED") == 2
