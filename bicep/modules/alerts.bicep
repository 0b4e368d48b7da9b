// Alerts, the workbook and managed Prometheus (terraform/modules/alerts): each alert is tied to a
// metric the code emits (tests/test_infra_metrics.py). Custom metric alerts skip metric
// validation (the metric exists only once emitted).
param location string
param baseName string
param appInsightsId string
param actionGroupId string
param eventhubNamespaceId string
param aksName string

var customAlerts = [
  {
    name: 'dead-letters'
    metric: 'marketflow.dead_letters'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    reason: ''
    window: 'PT15M'
    severity: 2
  }
  {
    name: 'trading-halted'
    metric: 'marketflow.trading_state'
    aggregation: 'Maximum'
    operator: 'GreaterThanOrEqual'
    threshold: 2
    reason: ''
    window: 'PT5M'
    severity: 1
  }
  {
    name: 'daily-loss-limit'
    metric: 'marketflow.decisions'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    reason: 'DAILY_LOSS_LIMIT'
    window: 'PT15M'
    severity: 1
  }
  {
    name: 'exchange-ban'
    metric: 'marketflow.decisions'
    aggregation: 'Total'
    operator: 'GreaterThan'
    threshold: 0
    reason: 'EXCHANGE_BAN'
    window: 'PT5M'
    severity: 0
  }
  {
    // The Functions' account (positions): today's loss held >= 80 % of the daily loss limit for 5 minutes.
    name: 'account-daily-loss-near-limit'
    metric: 'marketflow.daily_loss_used_pct'
    aggregation: 'Minimum'
    operator: 'GreaterThanOrEqual'
    threshold: 80
    reason: ''
    window: 'PT5M'
    severity: 1
  }
  {
    // Consumer lag of the Functions and the executor: an event handled > 5 minutes after it was enqueued.
    name: 'event-age'
    metric: 'marketflow.event_age'
    aggregation: 'Maximum'
    operator: 'GreaterThan'
    threshold: 300
    reason: ''
    window: 'PT5M'
    severity: 2
  }
]

// Each rule fires only after its expression held for `pending` (the rule's `for`), so one
// scrape's blip does not page; terraform/modules/alerts/prometheus_rules.tf.json has the same.
var prometheusRules = [
  {
    alert: 'executor-exchange-errors'
    expression: 'sum by (code) (increase(marketflow_executor_exchange_errors_total[5m])) > 0'
    severity: 2
    pending: 'PT5M'
  }
  {
    alert: 'executor-rejections'
    expression: 'sum by (outcome) (increase(marketflow_executor_orders_total{outcome=~"REJECTED|RISK_REJECTED"}[15m])) > 0'
    severity: 3
    pending: 'PT5M'
  }
  {
    alert: 'executor-latency-p99'
    expression: 'histogram_quantile(0.99, sum by (le) (rate(marketflow_executor_order_latency_seconds_bucket[5m]))) > 2'
    severity: 2
    pending: 'PT10M'
  }
  {
    alert: 'executor-no-lease-holder'
    expression: 'sum(marketflow_executor_lease_held) < 1'
    severity: 1
    pending: 'PT2M'
  }
  {
    alert: 'executor-halted'
    expression: 'max(marketflow_executor_trading_state{marketflow_executor_trading_state="HALTED"}) == 1'
    severity: 1
    pending: 'PT1M'
  }
  {
    alert: 'exchange-ban'
    expression: 'sum(increase(marketflow_executor_exchange_errors_total{code=~"418|429|-1003"}[5m])) > 0'
    severity: 0
    pending: 'PT1M'
  }
  {
    alert: 'daily-loss-near-limit'
    expression: 'max(marketflow_executor_daily_loss_limit_used) >= 0.8'
    severity: 1
    pending: 'PT5M'
  }
  {
    alert: 'market-data-stale'
    expression: 'max(marketflow_ingest_last_event_age_seconds) > 300'
    severity: 1
    pending: 'PT1M'
  }
  {
    alert: 'ingest-publish-failures'
    expression: 'increase(marketflow_ingest_write_failures_total[10m]) > 0'
    severity: 2
    pending: 'PT5M'
  }
]

resource functionFailures 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${baseName}-function-failures'
  location: 'global'
  properties: {
    description: 'A function invocation failed (Application Insights requests). docs/runbook.md, alerts.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'failed'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'requests/failed'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource custom 'Microsoft.Insights/metricAlerts@2018-03-01' = [for a in customAlerts: {
  name: 'alert-${baseName}-${a.name}'
  location: 'global'
  properties: {
    description: '${a.metric} ${a.operator} ${a.threshold}. docs/runbook.md, alerts.'
    severity: a.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: a.window
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'metric'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'azure.applicationinsights'
          metricName: a.metric
          timeAggregation: a.aggregation
          operator: a.operator
          threshold: a.threshold
          skipMetricValidation: true
          dimensions: empty(a.reason) ? [] : [
            {
              name: 'reason'
              operator: 'Include'
              values: [
                a.reason
              ]
            }
          ]
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}]

resource noMarketData 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${baseName}-no-market-data'
  location: location
  kind: 'LogAlert'
  properties: {
    description: 'No market-data event consumed for 5 minutes (marketflow.events, hub market-data).'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "marketflow.events" and tostring(customDimensions.hub) == "market-data" | summarize events = sum(valueSum) | extend events = coalesce(events, 0.0)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'events'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource eventhubThrottled 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${baseName}-eventhub-throttled'
  location: 'global'
  properties: {
    description: 'Event Hubs throttled requests: consumers fall behind (docs/capacity.md).'
    severity: 2
    enabled: true
    scopes: [
      eventhubNamespaceId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'throttled'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.EventHub/namespaces'
          metricName: 'ThrottledRequests'
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource prometheus 'Microsoft.Monitor/accounts@2023-04-03' = {
  name: 'amw-${baseName}'
  location: location
}

resource endpoint 'Microsoft.Insights/dataCollectionEndpoints@2023-03-11' = {
  name: 'dce-${baseName}-prometheus'
  location: location
  kind: 'Linux'
  properties: {}
}

resource rule 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: 'dcr-${baseName}-prometheus'
  location: location
  kind: 'Linux'
  properties: {
    dataCollectionEndpointId: endpoint.id
    dataSources: {
      prometheusForwarder: [
        {
          name: 'prometheus'
          streams: [
            'Microsoft-PrometheusMetrics'
          ]
        }
      ]
    }
    destinations: {
      monitoringAccounts: [
        {
          accountResourceId: prometheus.id
          name: 'prometheus'
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          'Microsoft-PrometheusMetrics'
        ]
        destinations: [
          'prometheus'
        ]
      }
    ]
  }
}

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: aksName
}

resource association 'Microsoft.Insights/dataCollectionRuleAssociations@2023-03-11' = {
  name: 'dcra-${baseName}-prometheus'
  scope: cluster
  properties: {
    dataCollectionRuleId: rule.id
  }
}

resource services 'Microsoft.AlertsManagement/prometheusRuleGroups@2023-03-01' = {
  name: 'prom-${baseName}-services'
  location: location
  properties: {
    description: 'MarketFlow executor and ingestor alerts (docs/runbook.md, alerts).'
    enabled: true
    clusterName: aksName
    interval: 'PT1M'
    scopes: [
      prometheus.id
      cluster.id
    ]
    rules: [for r in prometheusRules: {
      alert: r.alert
      expression: r.expression
      severity: r.severity
      for: r.pending
      enabled: true
      actions: [
        {
          actionGroupId: actionGroupId
        }
      ]
      resolveConfiguration: {
        autoResolved: true
        timeToResolve: 'PT10M'
      }
    }]
  }
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: '8a7c5d0e-6f1b-4c2a-9e3d-4b5a6c7d8e9f'
  location: location
  kind: 'shared'
  properties: {
    displayName: 'MarketFlow pipeline (${baseName})'
    category: 'workbook'
    sourceId: toLower(appInsightsId)
    serializedData: loadTextContent('../../terraform/modules/alerts/workbook.json')
  }
}
