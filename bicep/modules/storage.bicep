// Host, data and staging accounts, shared keys off (terraform/modules/storage).
param location string
param hostName string
param dataName string
param stagingName string
param logAnalyticsId string

var accounts = [
  hostName
  dataName
  stagingName
]
// shared/topology.py DEAD_LETTER_CONTAINER and CHECKPOINT_CONTAINER, the Capture target, and
// the executor's lease container.
var dataContainers = [
  'dead-letter'
  'checkpoints'
  'capture'
  'leases'
  'marketflow-state'
]
var stagingContainers = [
  'dead-letter'
  'marketflow-state'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = [for name in accounts: {
  // checkov:skip=CKV_AZURE_35:the Elastic Premium Functions host and AKS pods reach storage without a VNet, so the firewall cannot default to deny; access is Entra ID only (shared keys off)
  // checkov:skip=CKV_AZURE_59:no private endpoints (no VNet in this stack); shared keys are off and blob public access is disallowed
  // checkov:skip=CKV_AZURE_206:ZRS by design: dead letters and checkpoints are rebuildable, Capture is re-readable from the hubs' retention
  name: name
  location: location
  sku: {
    name: 'Standard_ZRS'
  }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices, Logging, Metrics'
    }
  }
}]

resource blob 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = [for (name, i) in accounts: {
  parent: account[i]
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}]

resource dataContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in dataContainers: {
  parent: blob[1]
  name: name
  properties: {
    publicAccess: 'None'
  }
}]

resource stagingContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in stagingContainers: {
  parent: blob[2]
  name: name
  properties: {
    publicAccess: 'None'
  }
}]

resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = [for (name, i) in accounts: {
  name: 'to-log-analytics'
  scope: blob[i]
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}]

output dataAccountId string = account[1].id
output dataBlobEndpoint string = account[1].properties.primaryEndpoints.blob
output stagingBlobEndpoint string = account[2].properties.primaryEndpoints.blob
