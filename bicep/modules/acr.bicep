// Premium registry, admin user off, geo-replicated in prod (terraform/modules/acr).
param location string
param name string
@description('Empty: no geo-replication (dev).')
param geoReplicationLocation string
param logAnalyticsId string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139:public access is needed by CI runners and AKS without a VNet; admin user and anonymous pull are off
  // checkov:skip=CKV_AZURE_166:image quarantine needs a scanner in the push path; images are built only by the deploy workflow from main
  name: name
  location: location
  sku: {
    name: 'Premium'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    publicNetworkAccess: 'Enabled'
    zoneRedundancy: 'Enabled'
    policies: {
      retentionPolicy: {
        status: 'enabled'
        days: 7
      }
    }
  }
}

resource replication 'Microsoft.ContainerRegistry/registries/replications@2023-07-01' = if (!empty(geoReplicationLocation)) {
  parent: registry
  name: empty(geoReplicationLocation) ? 'none' : geoReplicationLocation
  location: empty(geoReplicationLocation) ? location : geoReplicationLocation
  properties: {
    regionEndpointEnabled: true
    zoneRedundancy: 'Enabled'
  }
}

resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: registry
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

output id string = registry.id
output loginServer string = registry.properties.loginServer
