# Alerts, each tied to a metric the code emits (tests/test_infra_metrics.py checks every name):
#   Application Insights, from the OpenTelemetry distro (shared/telemetry.py): marketflow.* custom
#   metrics (customMetrics) and the Functions' requests. The host's own metrics are not exported
#   in OpenTelemetry mode, so function failures come from Application Insights' requests.
#   Custom metric alerts set skip_metric_validation: the metric does not exist until first emitted.
#   Managed Prometheus (the executor's and ingestor's /metrics, scraped from the pods' annotations):
#   a Prometheus rule group on the Azure Monitor workspace the AKS cluster sends to, in
#   prometheus_rules.tf.json (JSON so that each rule can carry its `for`; see that file).
# The Azure Monitor workbook (workbook.json) and the Grafana dashboard
# (helm/marketflow/dashboards/pipeline.json) chart the same metrics.

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "base_name" { type = string }
variable "app_insights_id" { type = string }
variable "action_group_id" { type = string }
variable "eventhub_namespace_id" { type = string }
variable "aks_id" { type = string }
variable "aks_name" { type = string }
variable "tags" { type = map(string) }

locals {
  # name -> (metric, aggregation, operator, threshold, dimension reason or null, window, severity)
  custom_alerts = {
    "dead-letters"     = { metric = "marketflow.dead_letters", aggregation = "Total", operator = "GreaterThan", threshold = 0, reason = null, window = "PT15M", severity = 2 }
    "trading-halted"   = { metric = "marketflow.trading_state", aggregation = "Maximum", operator = "GreaterThanOrEqual", threshold = 2, reason = null, window = "PT5M", severity = 1 }
    "daily-loss-limit" = { metric = "marketflow.decisions", aggregation = "Total", operator = "GreaterThan", threshold = 0, reason = "DAILY_LOSS_LIMIT", window = "PT15M", severity = 1 }
    "exchange-ban"     = { metric = "marketflow.decisions", aggregation = "Total", operator = "GreaterThan", threshold = 0, reason = "EXCHANGE_BAN", window = "PT5M", severity = 0 }
    # The Functions' account (positions): today's loss held >= 80 % of the daily loss limit for 5 minutes (the minimum).
    "account-daily-loss-near-limit" = { metric = "marketflow.daily_loss_used_pct", aggregation = "Minimum", operator = "GreaterThanOrEqual", threshold = 80, reason = null, window = "PT5M", severity = 1 }
    # Consumer lag of the Functions and the executor: the oldest event handled in 5 minutes was enqueued > 5 minutes before.
    "event-age" = { metric = "marketflow.event_age", aggregation = "Maximum", operator = "GreaterThan", threshold = 300, reason = null, window = "PT5M", severity = 2 }
  }
}

resource "azurerm_monitor_metric_alert" "function_failures" {
  name                = "alert-${var.base_name}-function-failures"
  resource_group_name = var.resource_group_name
  scopes              = [var.app_insights_id]
  description         = "A function invocation failed (Application Insights requests): publish or dead-letter failed and the batch is retried. docs/runbook.md, alerts."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = var.tags

  criteria {
    metric_namespace = "microsoft.insights/components"
    metric_name      = "requests/failed"
    aggregation      = "Count"
    operator         = "GreaterThan"
    threshold        = 0
  }

  action {
    action_group_id = var.action_group_id
  }
}

resource "azurerm_monitor_metric_alert" "custom" {
  for_each            = local.custom_alerts
  name                = "alert-${var.base_name}-${each.key}"
  resource_group_name = var.resource_group_name
  scopes              = [var.app_insights_id]
  description         = "${each.value.metric} ${each.value.operator} ${each.value.threshold}. docs/runbook.md, alerts."
  severity            = each.value.severity
  frequency           = "PT1M"
  window_size         = each.value.window
  tags                = var.tags

  criteria {
    metric_namespace       = "azure.applicationinsights"
    metric_name            = each.value.metric
    aggregation            = each.value.aggregation
    operator               = each.value.operator
    threshold              = each.value.threshold
    skip_metric_validation = true

    dynamic "dimension" {
      for_each = each.value.reason == null ? [] : [each.value.reason]
      content {
        name     = "reason"
        operator = "Include"
        values   = [dimension.value]
      }
    }
  }

  action {
    action_group_id = var.action_group_id
  }
}

# No market data for 5 minutes: a log alert, because a metric alert does not fire on no data.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "no_market_data" {
  name                 = "alert-${var.base_name}-no-market-data"
  resource_group_name  = var.resource_group_name
  location             = var.location
  scopes               = [var.app_insights_id]
  description          = "No market-data event consumed for 5 minutes (marketflow.events, hub market-data). docs/runbook.md, alerts."
  severity             = 1
  evaluation_frequency = "PT5M"
  window_duration      = "PT5M"
  tags                 = var.tags

  criteria {
    query                   = "customMetrics | where name == \"marketflow.events\" and tostring(customDimensions.hub) == \"market-data\" | summarize events = sum(valueSum) | extend events = coalesce(events, 0.0)"
    time_aggregation_method = "Total"
    metric_measure_column   = "events"
    operator                = "LessThan"
    threshold               = 1
  }

  action {
    action_groups = [var.action_group_id]
  }
}

# Consumer lag: Event Hubs throttles when ingress or egress passes the throughput units.
resource "azurerm_monitor_metric_alert" "eventhub_throttled" {
  name                = "alert-${var.base_name}-eventhub-throttled"
  resource_group_name = var.resource_group_name
  scopes              = [var.eventhub_namespace_id]
  description         = "Event Hubs throttled requests: consumers fall behind. Raise throughput units (docs/capacity.md)."
  severity            = 2
  frequency           = "PT1M"
  window_size         = "PT5M"
  tags                = var.tags

  criteria {
    metric_namespace = "Microsoft.EventHub/namespaces"
    metric_name      = "ThrottledRequests"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 0
  }

  action {
    action_group_id = var.action_group_id
  }
}

# --- managed Prometheus: where the pods' /metrics go, and the rules over them ----------------
resource "azurerm_monitor_workspace" "prometheus" {
  name                = "amw-${var.base_name}"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_monitor_data_collection_endpoint" "prometheus" {
  name                = "dce-${var.base_name}-prometheus"
  resource_group_name = var.resource_group_name
  location            = var.location
  kind                = "Linux"
  tags                = var.tags
}

resource "azurerm_monitor_data_collection_rule" "prometheus" {
  name                        = "dcr-${var.base_name}-prometheus"
  resource_group_name         = var.resource_group_name
  location                    = var.location
  kind                        = "Linux"
  data_collection_endpoint_id = azurerm_monitor_data_collection_endpoint.prometheus.id
  tags                        = var.tags

  destinations {
    monitor_account {
      monitor_account_id = azurerm_monitor_workspace.prometheus.id
      name               = "prometheus"
    }
  }

  data_flow {
    streams      = ["Microsoft-PrometheusMetrics"]
    destinations = ["prometheus"]
  }

  data_sources {
    prometheus_forwarder {
      name    = "prometheus"
      streams = ["Microsoft-PrometheusMetrics"]
    }
  }
}

resource "azurerm_monitor_data_collection_rule_association" "prometheus" {
  name                    = "dcra-${var.base_name}-prometheus"
  target_resource_id      = var.aks_id
  data_collection_rule_id = azurerm_monitor_data_collection_rule.prometheus.id
}

# The Prometheus rule group over these (each rule with a pending duration `for`) is in
# prometheus_rules.tf.json: checkov's HCL parser cannot read an argument named `for`.

resource "azurerm_application_insights_workbook" "pipeline" {
  name                = "8a7c5d0e-6f1b-4c2a-9e3d-4b5a6c7d8e9f"
  resource_group_name = var.resource_group_name
  location            = var.location
  display_name        = "MarketFlow pipeline (${var.base_name})"
  source_id           = lower(var.app_insights_id)
  data_json           = file("${path.module}/workbook.json")
  tags                = var.tags
}

output "prometheus_workspace_id" {
  value = azurerm_monitor_workspace.prometheus.id
}
