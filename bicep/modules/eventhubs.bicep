// One namespace with every hub of shared/topology.py (terraform/modules/eventhubs).
param location string
param namespaceName string
param hubs array
@description('Every (hub, consumer group) pair of `hubs`, flat: a resource loop cannot nest.')
param consumerGroups array
param capacity int
param maximumThroughputUnits int
@description('Empty: no Capture (the staging namespace).')
param captureStorageAccountId string
param captureContainerName string
param logAnalyticsId string

var capture = !empty(captureStorageAccountId)

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  sku: {
    name: 'Standard'
    tier: 'Standard'
    capacity: capacity
  }
  properties: {
    isAutoInflateEnabled: maximumThroughputUnits > 0
    maximumThroughputUnits: maximumThroughputUnits
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = [for h in hubs: {
  parent: namespace
  name: h.name
  properties: {
    partitionCount: h.partitions
    messageRetentionInDays: (h.retentionHours + 23) / 24
    captureDescription: capture ? {
      enabled: true
      encoding: 'Avro'
      intervalInSeconds: 300
      sizeLimitInBytes: 314572800
      skipEmptyArchives: true
      destination: {
        name: 'EventHubArchive.AzureBlockBlob'
        properties: {
          storageAccountResourceId: captureStorageAccountId
          blobContainer: captureContainerName
          archiveNameFormat: '{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}'
        }
      }
    } : null
  }
}]

resource group 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = [for cg in consumerGroups: {
  name: '${namespace.name}/${cg.hub}/${cg.group}'
  dependsOn: [
    hub
  ]
}]

resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output namespaceId string = namespace.id
