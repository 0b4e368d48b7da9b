"""Every metric an alert, the workbook or the Grafana dashboard names is one the code emits.

Emitted: the OpenTelemetry instruments of shared/telemetry.py (Application Insights customMetrics,
dotted names), the executor's Prometheus registry (rendered for real), and the ingestor's
families (aks_ingestor/metrics.py, rendered from an ingestor that is built but not run).
Referenced: metric names in terraform/modules/alerts, bicep/modules/alerts.bicep, the workbook
and helm/marketflow/dashboards. Azure's own platform metrics are listed apart, by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import infra

from shared import telemetry
from shared.events import Event

ALERTS_TF = infra.TERRAFORM / "modules" / "alerts" / "main.tf"
ALERTS_BICEP = infra.BICEP / "modules" / "alerts.bicep"
WORKBOOK = infra.TERRAFORM / "modules" / "alerts" / "workbook.json"
GRAFANA = infra.CHART / "dashboards" / "pipeline.json"
# Azure's platform metrics (not ours): Application Insights requests, Event Hubs throttling.
PLATFORM = {"requests/failed", "ThrottledRequests"}
OTEL_NAME = re.compile(r"marketflow\.[a-z_]+")
PROM_NAME = re.compile(r"marketflow_[a-z_]+")


def otel_emitted() -> set[str]:
    return set(telemetry.COUNTERS) | {telemetry.TRADING_STATE} | set(telemetry.HISTOGRAMS)


def prometheus_exposition_names(text: str) -> set[str]:
    """Sample names a scrape can see, from the `# TYPE` lines (labelled families may have no
    sample yet): counters as <name>_total, histograms as _bucket/_sum/_count."""
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        if kind == "counter":
            names.add(name if name.endswith("_total") else f"{name}_total")
        elif kind == "histogram":
            names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
        else:
            names.add(name)
    return names


def executor_emitted() -> set[str]:
    from aks_executor.metrics import ExecutorMetrics

    return prometheus_exposition_names(ExecutorMetrics().render().decode())


def ingestor_emitted() -> set[str]:
    """Rendered for real from an ingestor built (not run) with every stream kind subscribed."""
    from aks_ingestor.ingestor import Ingestor
    from aks_ingestor.metrics import render_metrics
    from aks_ingestor.settings import IngestSettings
    from aks_ingestor.sinks import InMemoryMalformedSink, PublisherSink

    class NoPublisher:
        def publish(self, hub: str, events: Sequence[Event], properties: Mapping[str, str] | None = None) -> None:
            raise AssertionError("nothing is published by rendering")

    settings = IngestSettings(symbols=("BTCUSDT",), intervals=("1m",), trades=True, book_ticker=True, rest_url=None)
    ingestor = Ingestor(settings, PublisherSink(NoPublisher()), InMemoryMalformedSink())
    return prometheus_exposition_names(render_metrics(ingestor))


def emitted() -> set[str]:
    return otel_emitted() | executor_emitted() | ingestor_emitted()


def referenced(text: str) -> set[str]:
    return set(OTEL_NAME.findall(text)) | set(PROM_NAME.findall(text))


def grafana_exprs() -> str:
    dashboard = json.loads(GRAFANA.read_text())
    return "\n".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])


def workbook_queries() -> str:
    workbook = json.loads(WORKBOOK.read_text())
    return "\n".join(i["content"].get("query", "") for i in workbook["items"])


def test_the_emitted_sets_are_real() -> None:
    assert {"marketflow.events", "marketflow.dead_letters", "marketflow.trading_state"} <= otel_emitted()
    executor = executor_emitted()
    assert {"marketflow_executor_orders_total", "marketflow_executor_order_latency_seconds_bucket",
            "marketflow_executor_exchange_errors_total", "marketflow_executor_lease_held",
            "marketflow_executor_daily_loss_limit_used"} <= executor
    assert {"marketflow_ingest_last_event_age_seconds", "marketflow_ingest_messages_total",
            "marketflow_ingest_reconnects_total", "marketflow_ingest_gaps_found_total",
            "marketflow_ingest_backfilled_total", "marketflow_ingest_duplicates_dropped_total",
            "marketflow_ingest_malformed_total", "marketflow_ingest_queue_overflows_total",
            "marketflow_ingest_publish_seconds_bucket"} <= ingestor_emitted()


def test_every_metric_an_alert_or_panel_names_is_emitted() -> None:
    known = emitted()
    for path, text in ((ALERTS_TF, ALERTS_TF.read_text()), (ALERTS_BICEP, ALERTS_BICEP.read_text()),
                       (WORKBOOK, workbook_queries()), (GRAFANA, grafana_exprs())):
        names = referenced(text)
        assert names, f"{path} names no metric"
        unknown = names - known
        assert not unknown, f"{path} names metrics the code does not emit: {sorted(unknown)}"


def test_a_typo_would_be_caught() -> None:
    assert referenced('rate(marketflow_executor_ordrs_total[5m])') - emitted() == {"marketflow_executor_ordrs_total"}


def test_platform_metrics_are_only_azures_own() -> None:
    text = ALERTS_TF.read_text()
    for name in re.findall(r'metric_name\s+= "([^"]+)"', text):
        assert name in PLATFORM, name
    bicep = ALERTS_BICEP.read_text()
    for name in re.findall(r"metricName: '([^']+)'", bicep):
        assert name in PLATFORM, name


def test_each_alert_of_the_issue_exists_in_both_stacks() -> None:
    wanted = {
        "function failures": "requests/failed",
        "dead-lettered events": "marketflow.dead_letters",
        "event age / consumer lag": "marketflow_ingest_last_event_age_seconds",
        "Functions and executor consumer lag (event age)": "marketflow.event_age",
        "executor order errors by code": "marketflow_executor_exchange_errors_total",
        "executor rejections": 'outcome=~\\"REJECTED|RISK_REJECTED\\"',
        "order latency p99": "histogram_quantile(0.99",
        "no market data for 5 minutes": "marketflow.events",
        "trading state HALTED": "marketflow.trading_state",
        "daily loss limit reached": "DAILY_LOSS_LIMIT",
        "daily loss near its limit (80 %)": "max(marketflow_executor_daily_loss_limit_used) >= 0.8",
        "exchange ban": "EXCHANGE_BAN",
    }
    tf = ALERTS_TF.read_text()
    bicep = ALERTS_BICEP.read_text()
    for alert, needle in wanted.items():
        assert needle in tf, f"terraform: {alert}"
        assert needle.replace('\\"', '"') in bicep, f"bicep: {alert}"


def test_the_workbook_and_dashboard_cover_the_pipeline(tmp_path: Path) -> None:
    assert {"marketflow.events", "marketflow.decisions", "marketflow.dead_letters",
            "marketflow.trading_state"} <= referenced(workbook_queries())
    assert {"marketflow_executor_orders_total", "marketflow_ingest_last_event_age_seconds"} <= \
        referenced(grafana_exprs())
    dashboard = json.loads(GRAFANA.read_text())
    assert dashboard["uid"] and all(p["datasource"]["type"] == "prometheus" for p in dashboard["panels"])
