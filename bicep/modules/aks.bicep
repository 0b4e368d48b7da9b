// AKS with workload identity, Azure RBAC, Cilium, managed Prometheus and a static egress IP;
// the executor's and ingestor's identities federated with their service accounts
// (terraform/modules/aks).
param location string
param name string
param nodeCount int
param vmSize string
param apiAuthorizedIpRanges array
param kubernetesNamespace string
param logAnalyticsId string
param executorIdentityName string
param ingestorIdentityName string
param registryName string
param keyVaultName string
param eventhubNamespaceName string
param dataStorageName string

var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var secretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var blobContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var tableContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var hubReceiver = 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
var hubSender = '2b629674-e913-4c01-ae53-ef4638d8f975'

// helm/marketflow service accounts: the federated credentials' subjects.
var services = [
  {
    key: 'executor'
    identity: executorIdentityName
    serviceAccount: 'marketflow-executor'
  }
  {
    key: 'ingestor'
    identity: ingestorIdentityName
    serviceAccount: 'marketflow-ingestor'
  }
]
// (service index, hub, role): the executor consumes orders and market-data and publishes
// executions; the ingestor only publishes market-data.
var hubRoles = [
  {
    service: 0
    hub: 'orders'
    role: hubReceiver
  }
  {
    service: 0
    hub: 'market-data'
    role: hubReceiver
  }
  {
    service: 0
    hub: 'executions'
    role: hubSender
  }
  {
    service: 1
    hub: 'market-data'
    role: hubSender
  }
]

resource egress 'Microsoft.Network/publicIPAddresses@2024-01-01' = {
  name: 'pip-${name}-egress'
  location: location
  sku: {
    name: 'Standard'
  }
  zones: [
    '1'
    '2'
    '3'
  ]
  properties: {
    publicIPAllocationMethod: 'Static'
  }
}

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' = {
  // checkov:skip=CKV_AZURE_226:ephemeral OS disks need a VM size with a cache disk; the default Dsv5 sizes have none
  // checkov:skip=CKV_AZURE_227:host encryption needs the EncryptionAtHost feature registered on the subscription (docs/runbook.md)
  // checkov:skip=CKV_AZURE_172:secret rotation is on (enableSecretRotation 'true', the string form ARM documents); checkov wants a boolean
  name: name
  location: location
  sku: {
    name: 'Base'
    tier: 'Standard'
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    dnsPrefix: name
    enableRBAC: true
    disableLocalAccounts: true
    aadProfile: {
      managed: true
      enableAzureRBAC: true
      tenantID: subscription().tenantId
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
      nodeOSUpgradeChannel: 'NodeImage'
    }
    oidcIssuerProfile: {
      enabled: true
    }
    securityProfile: {
      workloadIdentity: {
        enabled: true
      }
    }
    nodeProvisioningProfile: {
      mode: 'Manual'
    }
    apiServerAccessProfile: {
      authorizedIPRanges: apiAuthorizedIpRanges
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        vmSize: vmSize
        count: nodeCount
        maxPods: 50
        availabilityZones: [
          '1'
          '2'
          '3'
        ]
        enableAutoScaling: false
        osType: 'Linux'
        upgradeSettings: {
          maxSurge: '33%'
        }
      }
    ]
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      networkDataplane: 'cilium'
      networkPolicy: 'cilium'
      outboundType: 'loadBalancer'
      loadBalancerProfile: {
        outboundIPs: {
          publicIPs: [
            {
              id: egress.id
            }
          ]
        }
      }
    }
    addonProfiles: {
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: logAnalyticsId
          useAADAuth: 'true'
        }
      }
      azurepolicy: {
        enabled: true
      }
      kubeDashboard: {
        enabled: false
      }
      azureKeyvaultSecretsProvider: {
        enabled: true
        config: {
          enableSecretRotation: 'true'
        }
      }
    }
    azureMonitorProfile: {
      metrics: {
        enabled: true
      }
    }
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventhubNamespaceName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageName
}

resource checkpoints 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${dataStorage.name}/default/checkpoints'
}

resource leases 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${dataStorage.name}/default/leases'
}

resource stateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${dataStorage.name}/default/marketflow-state'
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  name: '${dataStorage.name}/default/dead-letter'
}

resource acrPullRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, cluster.id, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: cluster.properties.identityProfile.kubeletidentity.objectId
    principalType: 'ServicePrincipal'
  }
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = [for s in services: {
  name: s.identity
  location: location
}]

resource credential 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = [for (s, i) in services: {
  parent: identity[i]
  name: 'aks-${s.key}'
  properties: {
    issuer: cluster.properties.oidcIssuerProfile.issuerURL
    subject: 'system:serviceaccount:${kubernetesNamespace}:${s.serviceAccount}'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}]

resource hub 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' existing = [for r in hubRoles: {
  parent: namespace
  name: r.hub
}]

resource hubRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (r, i) in hubRoles: {
  name: guid(hub[i].id, identity[r.service].id, r.role)
  scope: hub[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: identity[r.service].properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource checkpointRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(checkpoints.id, identity[0].id, blobContributor)
  scope: checkpoints
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: identity[0].properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource leaseRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(leases.id, identity[0].id, blobContributor)
  scope: leases
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: identity[0].properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The executor's intent store (Table storage, shared by both replicas), scoped to the data account:
// the executor creates its table at start, and the data account holds no other tables.
resource intentsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, identity[0].id, tableContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', tableContributor)
    principalId: identity[0].properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The shared trading state (kill switch) the executor's last look reads and its ban alarm writes.
resource stateRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(stateContainer.id, identity[0].id, blobContributor)
  scope: stateContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: identity[0].properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource deadLetterRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (s, i) in services: {
  name: guid(deadLetters.id, identity[i].id, blobContributor)
  scope: deadLetters
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobContributor)
    principalId: identity[i].properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource secretsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity[0].id, secretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUser)
    principalId: identity[0].properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output executorClientId string = identity[0].properties.clientId
output ingestorClientId string = identity[1].properties.clientId
