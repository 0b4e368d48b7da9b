using 'main.bicep'

param environment = 'prod'
param location = 'westeurope'
param alertEmail = 'marketflow-oncall@example.com'
param functionsSku = 'EP2'
param functionsMaxBurst = 4
param eventhubCapacity = 2
param eventhubMaxThroughputUnits = 8
param aksNodeCount = 3
param aksVmSize = 'Standard_D4s_v5'
param aksApiAuthorizedIpRanges = [
  '203.0.113.0/24'
]
param logRetentionDays = 90
