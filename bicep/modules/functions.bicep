// Elastic Premium Linux Function App (Python 3.11) with a `staging` slot that never touches
// production: sticky AzureWebJobs.<function>.Disabled=true and its own namespace and account
// (terraform/modules/functions). Identity-based connections; least-privilege roles per hub.
param location string
param servicePlanName string
param functionAppName string
param skuName string
param maximumElasticWorkerCount int
param hostStorageName string
param stagingStorageName string
param dataStorageName string
param dataBlobEndpoint string
param stagingBlobEndpoint string
param eventhubNamespaceFqdn string
param eventhubStagingFqdn string
param eventhubNamespaceName string
param eventhubStagingNamespaceName string
param eventhubFunctions array
@secure()
param appInsightsConnectionString string

var blobOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var blobContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var hubReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var hubSender = '2b629674-e913-4c01-ae53-ef4638d8f975'
var receiveHubs = [
  'market-data'
  'signals'
  'executions'
]
var sendHubs = [
  'signals'
  'orders'
]
var disabledSettings = [for f in eventhubFunctions: 'AzureWebJobs.${f}.Disabled']
var stickySettings = concat([
  'EVENTHUB__fullyQualifiedNamespace'
  'DEADLETTER_STORAGE__blobServiceUri'
  'STATE_STORAGE__blobServiceUri'
  'AzureWebJobsStorage__accountName'
], disabledSettings)

var productionDisabled = [for s in disabledSettings: {
  name: s
  value: 'false'
}]
var stagingDisabled = [for s in disabledSettings: {
  name: s
  value: 'true'
}]

// Travels with a swap: what the code does, not where it connects.
var commonSettings = [
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'python'
  }
  {
    name: 'OTEL_SERVICE_NAME'
    value: 'marketflow-functions'
  }
  // The Python worker configures the Azure Monitor distro itself (host.json telemetryMode is
  // OpenTelemetry); shared/telemetry.py then never configures a second exporter.
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
    value: 'true'
  }
  {
    name: 'PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME'
    value: 'marketflow'
  }
  {
    name: 'MARKETFLOW_STRATEGY'
    value: 'sma_cross'
  }
  {
    name: 'MARKETFLOW_STRATEGY_PARAMS'
    value: 'fast=10 slow=20'
  }
  {
    name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'
    value: 'false'
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
]
var productionSettings = concat(commonSettings, [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: hostStorageName
  }
  {
    name: 'EVENTHUB__fullyQualifiedNamespace'
    value: eventhubNamespaceFqdn
  }
  {
    name: 'DEADLETTER_STORAGE__blobServiceUri'
    value: dataBlobEndpoint
  }
  {
    name: 'STATE_STORAGE__blobServiceUri'
    value: dataBlobEndpoint
  }
], productionDisabled)
var stagingSettings = concat(commonSettings, [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: stagingStorageName
  }
  {
    name: 'EVENTHUB__fullyQualifiedNamespace'
    value: eventhubStagingFqdn
  }
  {
    name: 'DEADLETTER_STORAGE__blobServiceUri'
    value: stagingBlobEndpoint
  }
  {
    name: 'STATE_STORAGE__blobServiceUri'
    value: stagingBlobEndpoint
  }
], stagingDisabled)

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  // checkov:skip=CKV_AZURE_225:zone redundancy needs three always-ready EP instances; prod can set it when the cost is justified (docs/capacity.md)
  name: servicePlanName
  location: location
  kind: 'elastic'
  sku: {
    name: skuName
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true
    maximumElasticWorkerCount: maximumElasticWorkerCount
  }
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222:public network access is needed for the deployment (functions-action) and the health endpoint; no VNet in this stack
  // checkov:skip=CKV_AZURE_212:instance count is governed by Event Hubs partitions (one instance per partition is useful), see docs/capacity.md
  // checkov:skip=CKV_AZURE_213:the platform health check would evict instances until the `health` function exists; the deploy smoke test calls it instead
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: true
    clientCertMode: 'Optional'
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      ftpsState: 'Disabled'
      http20Enabled: true
      minTlsVersion: '1.2'
      minimumElasticInstanceCount: 1
      functionsRuntimeScaleMonitoringEnabled: true
      appSettings: productionSettings
    }
  }
}

resource staging 'Microsoft.Web/sites/slots@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222:public network access is needed for the deployment (functions-action) and the health endpoint; no VNet in this stack
  // checkov:skip=CKV_AZURE_212:instance count is governed by Event Hubs partitions (one instance per partition is useful), see docs/capacity.md
  // checkov:skip=CKV_AZURE_213:the platform health check would evict instances until the `health` function exists; the deploy smoke test calls it instead
  parent: app
  name: 'staging'
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: true
    clientCertMode: 'Optional'
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      ftpsState: 'Disabled'
      http20Enabled: true
      minTlsVersion: '1.2'
      minimumElasticInstanceCount: 1
      functionsRuntimeScaleMonitoringEnabled: true
      appSettings: stagingSettings
    }
  }
}

resource sticky 'Microsoft.Web/sites/config@2023-12-01' = {
  // checkov:skip=CKV_AZURE_13:slotConfigNames is the list of slot-sticky settings, not a site configuration; checkov reads every sites/config as one
  // checkov:skip=CKV_AZURE_63:slotConfigNames is not a site configuration (see CKV_AZURE_13); logging is the app's own setting
  // checkov:skip=CKV_AZURE_65:slotConfigNames is not a site configuration (see CKV_AZURE_13)
  // checkov:skip=CKV_AZURE_66:slotConfigNames is not a site configuration (see CKV_AZURE_13)
  // checkov:skip=CKV_AZURE_80:slotConfigNames is not a site configuration; the app runs Python, not .NET
  // checkov:skip=CKV_AZURE_88:slotConfigNames is not a site configuration; Functions keep no state on Azure Files
  // checkov:skip=CKV_AZURE_222:slotConfigNames is not a site configuration (public access: see the app)
  parent: app
  name: 'slotConfigNames'
  properties: {
    appSettingNames: stickySettings
  }
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageName
}

resource stagingStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: stagingStorageName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageName
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${dataStorage.name}/default/dead-letter'
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${dataStorage.name}/default/marketflow-state'
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventhubNamespaceName
}

resource stagingNamespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventhubStagingNamespaceName
}

resource receiveHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = [for h in receiveHubs: {
  parent: namespace
  name: h
}]

resource sendHub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = [for h in sendHubs: {
  parent: namespace
  name: h
}]

resource hostStorageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, app.id, blobOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource deadLetterRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetters.id, app.id, blobContributor)
  scope: deadLetters
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource stateRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stateContainer.id, app.id, blobContributor)
  scope: stateContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource receiveRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (h, i) in receiveHubs: {
  name: guid(receiveHub[i].id, app.id, hubReceiver)
  scope: receiveHub[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', hubReceiver)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource sendRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (h, i) in sendHubs: {
  name: guid(sendHub[i].id, app.id, hubSender)
  scope: sendHub[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', hubSender)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource stagingStorageRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stagingStorage.id, staging.id, blobOwner)
  scope: stagingStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobOwner)
    principalId: staging.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource stagingReceiveRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stagingNamespace.id, staging.id, hubReceiver)
  scope: stagingNamespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', hubReceiver)
    principalId: staging.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource stagingSendRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stagingNamespace.id, staging.id, hubSender)
  scope: stagingNamespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', hubSender)
    principalId: staging.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output stagingHostname string = staging.properties.defaultHostName
