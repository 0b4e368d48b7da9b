using 'main.bicep'

param environment = 'dev'
param location = 'westeurope'
param alertEmail = 'marketflow-dev-alerts@example.com'
param functionsSku = 'EP1'
param functionsMaxBurst = 4
param eventhubCapacity = 1
param eventhubMaxThroughputUnits = 2
param aksNodeCount = 2
param aksVmSize = 'Standard_D2s_v5'
param aksApiAuthorizedIpRanges = [
  '203.0.113.0/24'
]
param logRetentionDays = 30
