// MarketFlow on Azure, the Bicep twin of terraform/ (tests/test_infra_bicep.py holds both to the
// same resources, names and settings). Deploy at resource-group scope:
//   az deployment group create -g rg-marketflow-<env> -f bicep/main.bicep -p bicep/main.<env>.bicepparam
// Kept within what checkov's Bicep parser (pycep) reads: no user-defined types, typed arrays or lambdas.

@description('Environment name (dev, prod); part of every resource name.')
@allowed([
  'dev'
  'prod'
])
param environment string

@description('Azure region of every resource.')
param location string = 'westeurope'

@description('Short project name used in resource names.')
param project string = 'marketflow'

@description('Up to 8 lower-case letters/digits for globally unique names.')
param shortName string = 'mktflw'

@description('Where the action group sends alert e-mails.')
param alertEmail string

@description('Elastic Premium plan size (EP1, EP2, EP3).')
param functionsSku string = 'EP1'

@description('Most instances the Elastic Premium plan scales out to.')
param functionsMaxBurst int = 4

@description('Throughput units of the production Event Hubs namespace.')
param eventhubCapacity int = 1

@description('Auto-inflate ceiling of the production namespace; 0 turns auto-inflate off.')
param eventhubMaxThroughputUnits int = 4

@description('Nodes in the AKS system pool.')
param aksNodeCount int = 2

@description('VM size of the AKS system pool.')
param aksVmSize string = 'Standard_D2s_v5'

@description('CIDRs allowed to reach the AKS API server.')
param aksApiAuthorizedIpRanges array

@description('Namespace the Helm chart installs into.')
param kubernetesNamespace string = 'marketflow'

@description('Log Analytics retention in days.')
param logRetentionDays int = 30

var base = '${project}-${environment}'

// Every resource name, in one place (terraform/main.tf local.names builds the same ones).
var names = {
  logAnalytics: 'log-${base}'
  appInsights: 'appi-${base}'
  actionGroup: 'ag-${base}'
  storageHost: 'st${shortName}${environment}host'
  storageData: 'st${shortName}${environment}data'
  storageStaging: 'st${shortName}${environment}stg'
  eventhubNamespace: 'evhns-${base}'
  eventhubNamespaceStaging: 'evhns-${base}-staging'
  keyVault: 'kv-${shortName}-${environment}'
  servicePlan: 'asp-${base}'
  functionApp: 'func-${base}'
  containerRegistry: 'cr${shortName}${environment}'
  aks: 'aks-${base}'
  executorIdentity: 'id-${base}-executor'
  ingestorIdentity: 'id-${base}-ingestor'
}

// shared/topology.py: every hub with its partitions, consumer groups and retention.
var hubs = [
  {
    name: 'market-data'
    partitions: 4
    consumerGroups: [
      'signals'
      'executor'
      'positions'
    ]
    retentionHours: 24
  }
  {
    name: 'signals'
    partitions: 4
    consumerGroups: [
      'risk'
    ]
    retentionHours: 24
  }
  {
    name: 'orders'
    partitions: 4
    consumerGroups: [
      'executor'
    ]
    retentionHours: 24
  }
  {
    name: 'executions'
    partitions: 4
    consumerGroups: [
      'positions'
    ]
    retentionHours: 24
  }
]

// The same pairs, flat, for the consumer-group resource loop (the topology test checks both).
var consumerGroups = [
  {
    hub: 'market-data'
    group: 'signals'
  }
  {
    hub: 'market-data'
    group: 'executor'
  }
  {
    hub: 'market-data'
    group: 'positions'
  }
  {
    hub: 'signals'
    group: 'risk'
  }
  {
    hub: 'orders'
    group: 'executor'
  }
  {
    hub: 'executions'
    group: 'positions'
  }
]

// The Event Hub-triggered functions (function_app.py); each is disabled on the staging slot.
var eventhubFunctions = [
  'signals'
  'risk'
  'positions'
  'positions_marks'
]

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    actionGroupName: names.actionGroup
    alertEmail: alertEmail
    retentionDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    hostName: names.storageHost
    dataName: names.storageData
    stagingName: names.storageStaging
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module eventhubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    location: location
    namespaceName: names.eventhubNamespace
    hubs: hubs
    consumerGroups: consumerGroups
    capacity: eventhubCapacity
    maximumThroughputUnits: eventhubMaxThroughputUnits
    captureStorageAccountId: storage.outputs.dataAccountId
    captureContainerName: 'capture'
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module eventhubsStaging 'modules/eventhubs.bicep' = {
  name: 'eventhubs-staging'
  params: {
    location: location
    namespaceName: names.eventhubNamespaceStaging
    hubs: hubs
    consumerGroups: consumerGroups
    capacity: 1
    maximumThroughputUnits: 0
    captureStorageAccountId: ''
    captureContainerName: ''
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module keyvault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    name: names.keyVault
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module functions 'modules/functions.bicep' = {
  name: 'functions'
  params: {
    location: location
    servicePlanName: names.servicePlan
    functionAppName: names.functionApp
    skuName: functionsSku
    maximumElasticWorkerCount: functionsMaxBurst
    hostStorageName: names.storageHost
    stagingStorageName: names.storageStaging
    dataBlobEndpoint: storage.outputs.dataBlobEndpoint
    stagingBlobEndpoint: storage.outputs.stagingBlobEndpoint
    eventhubNamespaceFqdn: '${names.eventhubNamespace}.servicebus.windows.net'
    eventhubStagingFqdn: '${names.eventhubNamespaceStaging}.servicebus.windows.net'
    eventhubNamespaceName: names.eventhubNamespace
    eventhubStagingNamespaceName: names.eventhubNamespaceStaging
    dataStorageName: names.storageData
    eventhubFunctions: eventhubFunctions
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
  }
  dependsOn: [
    storage
    eventhubs
    eventhubsStaging
  ]
}

module acr 'modules/acr.bicep' = {
  name: 'acr'
  params: {
    location: location
    name: names.containerRegistry
    geoReplicationLocation: environment == 'prod' ? 'northeurope' : ''
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module aks 'modules/aks.bicep' = {
  name: 'aks'
  params: {
    location: location
    name: names.aks
    nodeCount: aksNodeCount
    vmSize: aksVmSize
    apiAuthorizedIpRanges: aksApiAuthorizedIpRanges
    kubernetesNamespace: kubernetesNamespace
    logAnalyticsId: monitoring.outputs.logAnalyticsId
    executorIdentityName: names.executorIdentity
    ingestorIdentityName: names.ingestorIdentity
    registryName: names.containerRegistry
    keyVaultName: names.keyVault
    eventhubNamespaceName: names.eventhubNamespace
    dataStorageName: names.storageData
  }
  dependsOn: [
    acr
    keyvault
    eventhubs
    storage
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    baseName: base
    appInsightsId: monitoring.outputs.appInsightsId
    actionGroupId: monitoring.outputs.actionGroupId
    eventhubNamespaceId: eventhubs.outputs.namespaceId
    aksName: names.aks
  }
  dependsOn: [
    aks
  ]
}

output functionAppName string = names.functionApp
output functionAppStagingHostname string = functions.outputs.stagingHostname
output eventhubNamespaceFqdn string = '${names.eventhubNamespace}.servicebus.windows.net'
output eventhubStagingNamespaceFqdn string = '${names.eventhubNamespaceStaging}.servicebus.windows.net'
output acrLoginServer string = acr.outputs.loginServer
output aksName string = names.aks
output executorClientId string = aks.outputs.executorClientId
output ingestorClientId string = aks.outputs.ingestorClientId
