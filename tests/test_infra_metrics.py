"""Every metric an alert, the workbook or the Grafana dashboard names is one the code emits.

Emitted: the OpenTelemetry instruments of shared/telemetry.py (Application Insights customMetrics,
dotted names), the executor's Prometheus registry (rendered for real), and the ingestor's
families (aks_ingestor/metrics.py, rendered from an ingestor that is built but not run).
Referenced: metric names in terraform/modules/alerts (main.tf and prometheus_rules.tf.json),
bicep/modules/alerts.bicep, the workbook and helm/marketflow/dashboards. Azure's own platform
metrics are listed apart, by name. Both stacks define the same alerts with the same thresholds,
windows and pending durations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import infra

from shared import telemetry
from shared.events import Event

ALERTS_TF = infra.TERRAFORM / "modules" / "alerts" / "main.tf"
PROMETHEUS_TF = infra.TERRAFORM / "modules" / "alerts" / "prometheus_rules.tf.json"
ALERTS_BICEP = infra.BICEP / "modules" / "alerts.bicep"
WORKBOOK = infra.TERRAFORM / "modules" / "alerts" / "workbook.json"
GRAFANA = infra.CHART / "dashboards" / "pipeline.json"
# Azure's platform metrics (not ours): Application Insights requests, Event Hubs throttling.
PLATFORM = {"requests/failed", "ThrottledRequests"}
OTEL_NAME = re.compile(r"marketflow\.[a-z_]+")
PROM_NAME = re.compile(r"marketflow_[a-z_]+")


def otel_emitted() -> set[str]:
    return set(telemetry.COUNTERS) | {telemetry.TRADING_STATE} | set(telemetry.HISTOGRAMS) | set(telemetry.GAUGES)


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


def strings_under(node: Any, key: str) -> list[str]:
    """Every string value of `key` anywhere in a JSON document (panels in rows, items in groups)."""
    if isinstance(node, dict):
        found = [node[key]] if isinstance(node.get(key), str) else []
        return found + [s for v in node.values() for s in strings_under(v, key)]
    if isinstance(node, list):
        return [s for v in node for s in strings_under(v, key)]
    return []


def grafana_exprs() -> str:
    return "\n".join(strings_under(json.loads(GRAFANA.read_text()), "expr"))


def workbook_queries() -> str:
    return "\n".join(strings_under(json.loads(WORKBOOK.read_text()), "query"))


def tf_prometheus_group() -> dict[str, Any]:
    ((name, body),) = json.loads(PROMETHEUS_TF.read_text())["resource"][
        "azurerm_monitor_alert_prometheus_rule_group"].items()
    assert name == "services"
    group: dict[str, Any] = body
    return group


def tf_prometheus_exprs() -> str:
    return "\n".join(r["expression"] for r in tf_prometheus_group()["rule"])


def bicep_tree() -> dict[str, Any]:
    return infra.bicep(ALERTS_BICEP)


def expand(node: Any, item_name: str, item: dict[str, Any]) -> Any:
    """A Bicep loop body as pycep parses it, with `item.key` accessors replaced by the item's values."""
    if isinstance(node, dict):
        operator = node.get("operator")
        if isinstance(operator, dict) and operator.get("type") == "property_accessor" and \
                operator["operands"]["operand_1"] == item_name:
            return item[operator["operands"]["operand_2"]]
        return {k: expand(v, item_name, item) for k, v in node.items()}
    if isinstance(node, list):
        return [expand(v, item_name, item) for v in node]
    return node


def bicep_loop(resource: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(item, body) of each instance of a Bicep `[for x in var: {...}]` resource or property,
    the body with the item's values in place of `x.key` (interpolated strings stay as written)."""
    tree = bicep_tree()
    loop = tree["resources"][resource]["config"]
    if "loop_type" not in loop:
        loop = loop["properties"]["rules"]
    detail = loop["loop_type"]["detail"]
    items = tree["variables"][detail["array_name"]]["value"]
    return [(item, expand(loop["config"], detail["item_name"], item)) for item in items]


class Rule(NamedTuple):
    """One Prometheus alert rule as both stacks must write it."""

    expression: str
    severity: int
    pending: str
    enabled: bool
    auto_resolved: bool
    time_to_resolve: str


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
    # Whole files, titles included: a panel titled after a metric must name a real one too.
    for path in (ALERTS_TF, PROMETHEUS_TF, ALERTS_BICEP, WORKBOOK, GRAFANA):
        names = referenced(path.read_text())
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
        "daily loss near its limit, the Functions' account": "marketflow.daily_loss_used_pct",
        "exchange ban": "EXCHANGE_BAN",
    }
    tf = ALERTS_TF.read_text() + tf_prometheus_exprs().replace('"', '\\"')
    bicep = ALERTS_BICEP.read_text()
    for alert, needle in wanted.items():
        assert needle in tf, f"terraform: {alert}"
        assert needle.replace('\\"', '"') in bicep, f"bicep: {alert}"


def test_the_workbook_and_dashboard_cover_the_pipeline(tmp_path: Path) -> None:
    assert {"marketflow.events", "marketflow.decisions", "marketflow.dead_letters",
            "marketflow.trading_state"} <= referenced(workbook_queries())
    assert set(telemetry.GAUGES) <= referenced(workbook_queries()), "the account panels (positions)"
    assert {"marketflow_executor_orders_total", "marketflow_ingest_last_event_age_seconds",
            "marketflow_executor_daily_loss_limit_used"} <= referenced(grafana_exprs())
    assert len(strings_under(json.loads(GRAFANA.read_text()), "expr")) >= len(json.loads(GRAFANA.read_text())["panels"])
    dashboard = json.loads(GRAFANA.read_text())
    assert dashboard["uid"] and all(p["datasource"]["type"] == "prometheus" for p in dashboard["panels"])


def test_both_stacks_have_the_same_prometheus_rules_and_durations() -> None:
    """Same rule names, expressions, severities, pending durations (`for`) and resolution, same
    group interval; every rule waits at least one evaluation interval before it fires."""
    group = tf_prometheus_group()
    tf = {r["alert"]: Rule(r["expression"], r["severity"], r["for"], r["enabled"],
                           r["alert_resolution"]["auto_resolved"], r["alert_resolution"]["time_to_resolve"])
          for r in group["rule"]}
    bicep = {r["alert"]: Rule(r["expression"], r["severity"], r["for"], r["enabled"],
                              r["resolveConfiguration"]["autoResolved"], r["resolveConfiguration"]["timeToResolve"])
             for _, r in bicep_loop("services")}
    assert tf == bicep
    assert len(tf) == 9
    properties = bicep_tree()["resources"]["services"]["config"]["properties"]
    assert group["interval"] == properties["interval"] == "PT1M"
    assert group["rule_group_enabled"] is properties["enabled"] is True
    for name, rule in tf.items():
        assert re.fullmatch(r"PT([1-9]\d*)M", rule.pending), f"{name}: `for` {rule.pending!r} is not >= PT1M"
        assert all(a["action_group_id"] == "${var.action_group_id}" for a in
                   [r["action"] for r in group["rule"] if r["alert"] == name])
    assert tf["daily-loss-near-limit"].pending == "PT5M"


def test_both_stacks_have_the_same_metric_and_log_alerts_and_windows() -> None:
    """The Application Insights metric alerts (thresholds, aggregation, window, frequency) and the
    log and platform alerts (evaluation frequency, window) agree between the stacks."""
    tf_custom = infra.terraform_locals(ALERTS_TF)["custom_alerts"]
    tf_resources = {n: b for _, t, n, b in infra.terraform_resources_of("alerts")}
    bicep_custom = {}
    for item, alert in bicep_loop("custom"):
        assert alert["name"] == "alert-${baseName}-${a.name}"
        props = alert["properties"]
        (criterion,) = props["criteria"]["allOf"]
        bicep_custom[item["name"]] = (criterion["metricName"], criterion["timeAggregation"], criterion["operator"],
                                       criterion["threshold"], props["windowSize"], props["evaluationFrequency"],
                                       props["severity"], criterion["skipMetricValidation"])
    # pycep keeps `empty(a.reason) ? [] : [...]` as a condition; the table's reason decides it.
    bicep_table = {a["name"]: a["reason"] or None for a in bicep_tree()["variables"]["customAlerts"]["value"]}
    custom = tf_resources["custom"]
    assert custom["name"] == "alert-${var.base_name}-${each.key}"
    assert custom["frequency"] == "PT1M" and custom["window_size"] == "${each.value.window}"
    assert custom["criteria"][0]["skip_metric_validation"] is True
    tf_table = {name: (a["metric"], a["aggregation"], a["operator"], a["threshold"],
                       a["window"], "PT1M", a["severity"], True) for name, a in tf_custom.items()}
    assert bicep_custom == tf_table
    assert bicep_table == {name: a["reason"] for name, a in tf_custom.items()}
    singles = {"function_failures": "functionFailures", "eventhub_throttled": "eventhubThrottled",
               "no_market_data": "noMarketData"}
    for tf_name, bicep_name in singles.items():
        body = tf_resources[tf_name]
        props = bicep_tree()["resources"][bicep_name]["config"]["properties"]
        tf_times = (body.get("frequency") or body["evaluation_frequency"], body.get("window_size") or
                    body["window_duration"], body["severity"])
        assert tf_times == (props["evaluationFrequency"], props["windowSize"], props["severity"]), tf_name


def test_the_runbook_names_every_alert_and_each_rules_duration() -> None:
    """docs/runbook.md section 8 has a row for every alert of the stacks, and a Prometheus rule's row
    says its `for` duration as written there (PT5M -> "for 5 min")."""
    text = (infra.ROOT / "docs" / "runbook.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w-]+)`[^\n]*$", text, flags=re.M)}
    tf_resources = {n: b for _, t, n, b in infra.terraform_resources_of("alerts")}
    singles = {n.replace("_", "-") for n, b in tf_resources.items() if str(b.get("name", "")).startswith("alert-")
               and "for_each" not in b}
    names = singles | set(infra.terraform_locals(ALERTS_TF)["custom_alerts"])
    assert {"function-failures", "no-market-data", "eventhub-throttled", "dead-letters"} <= names
    for name in names:
        assert name in rows, f"docs/runbook.md has no row for alert {name}"
    for rule in tf_prometheus_group()["rule"]:
        assert rule["alert"] in rows, f"docs/runbook.md has no row for Prometheus rule {rule['alert']}"
        minutes = re.fullmatch(r"PT(\d+)M", rule["for"])
        assert minutes and f"for {minutes.group(1)} min" in rows[rule["alert"]], rule["alert"]
