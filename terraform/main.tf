# MarketFlow on Azure: Event Hubs between the stages, the Functions (signals, risk, positions)
# on an Elastic Premium plan with a staging slot, the executor and ingestor on AKS, Key Vault for
# the exchange keys, and Azure Monitor. Hubs, partitions and consumer groups below are
# shared/topology.py's (tests/test_infra_topology.py holds them equal).

locals {
  base = "${var.project}-${var.environment}"

  # Every resource name, in one place (bicep/main.bicep builds the same names; a test compares).
  names = {
    resource_group             = "rg-${local.base}"
    log_analytics              = "log-${local.base}"
    app_insights               = "appi-${local.base}"
    action_group               = "ag-${local.base}"
    storage_host               = "st${var.short_name}${var.environment}host"
    storage_data               = "st${var.short_name}${var.environment}data"
    storage_staging            = "st${var.short_name}${var.environment}stg"
    eventhub_namespace         = "evhns-${local.base}"
    eventhub_namespace_staging = "evhns-${local.base}-staging"
    key_vault                  = "kv-${var.short_name}-${var.environment}"
    service_plan               = "asp-${local.base}"
    function_app               = "func-${local.base}"
    container_registry         = "cr${var.short_name}${var.environment}"
    aks                        = "aks-${local.base}"
    executor_identity          = "id-${local.base}-executor"
    ingestor_identity          = "id-${local.base}-ingestor"
  }

  # shared/topology.py: hub name -> partitions, consumer groups, retention.
  hubs = {
    "market-data" = { partitions = 4, consumer_groups = ["signals", "executor", "positions"], retention_hours = 24 }
    "signals"     = { partitions = 4, consumer_groups = ["risk"], retention_hours = 24 }
    "orders"      = { partitions = 4, consumer_groups = ["executor"], retention_hours = 24 }
    "executions"  = { partitions = 4, consumer_groups = ["positions"], retention_hours = 24 }
  }

  # The Event Hub-triggered functions (function_app.py); each is disabled on the staging slot.
  eventhub_functions = ["signals", "risk", "positions", "positions_marks"]

  tags = merge(var.tags, { project = var.project, environment = var.environment })
}

resource "azurerm_resource_group" "main" {
  name     = local.names.resource_group
  location = var.location
  tags     = local.tags
}

module "monitoring" {
  source              = "./modules/monitoring"
  resource_group_name = azurerm_resource_group.main.name
  location            = var.location
  names               = local.names
  alert_email         = var.alert_email
  retention_days      = var.log_retention_days
  tags                = local.tags
}

module "storage" {
  source                     = "./modules/storage"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = var.location
  names                      = local.names
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

module "eventhubs" {
  source                     = "./modules/eventhubs"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = var.location
  namespace_name             = local.names.eventhub_namespace
  hubs                       = local.hubs
  capacity                   = var.eventhub_capacity
  maximum_throughput_units   = var.eventhub_max_throughput_units
  capture_storage_account_id = module.storage.data_account_id
  capture_container_name     = module.storage.capture_container_name
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

# The staging slot's own namespace: same hubs, no Capture, one throughput unit. A slot pointed
# here can neither consume nor publish production events.
module "eventhubs_staging" {
  source                     = "./modules/eventhubs"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = var.location
  namespace_name             = local.names.eventhub_namespace_staging
  hubs                       = local.hubs
  capacity                   = 1
  maximum_throughput_units   = 0
  capture_storage_account_id = null
  capture_container_name     = null
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

module "keyvault" {
  source                     = "./modules/keyvault"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = var.location
  name                       = local.names.key_vault
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

module "functions" {
  source                       = "./modules/functions"
  resource_group_name          = azurerm_resource_group.main.name
  location                     = var.location
  names                        = local.names
  sku_name                     = var.functions_sku
  maximum_elastic_worker_count = var.functions_max_burst
  host_storage_account_name    = module.storage.host_account_name
  host_storage_account_id      = module.storage.host_account_id
  staging_storage_account_name = module.storage.staging_account_name
  staging_storage_account_id   = module.storage.staging_account_id
  data_blob_endpoint           = module.storage.data_blob_endpoint
  staging_blob_endpoint        = module.storage.staging_blob_endpoint
  dead_letter_container_id     = module.storage.dead_letter_container_id
  state_container_id           = module.storage.state_container_id
  eventhub_namespace_fqdn      = module.eventhubs.namespace_fqdn
  eventhub_staging_fqdn        = module.eventhubs_staging.namespace_fqdn
  eventhub_ids                 = module.eventhubs.hub_ids
  eventhub_staging_namespace   = module.eventhubs_staging.namespace_id
  eventhub_functions           = local.eventhub_functions
  app_insights_connection      = module.monitoring.app_insights_connection_string
  tags                         = local.tags
}

module "acr" {
  source                     = "./modules/acr"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = var.location
  name                       = local.names.container_registry
  geo_replication_location   = var.environment == "prod" ? "northeurope" : null
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

module "aks" {
  source                     = "./modules/aks"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = var.location
  names                      = local.names
  node_count                 = var.aks_node_count
  vm_size                    = var.aks_vm_size
  api_authorized_ip_ranges   = var.aks_api_authorized_ip_ranges
  kubernetes_namespace       = var.kubernetes_namespace
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  acr_id                     = module.acr.id
  key_vault_id               = module.keyvault.id
  eventhub_ids               = module.eventhubs.hub_ids
  checkpoint_container_id    = module.storage.checkpoint_container_id
  lease_container_id         = module.storage.lease_container_id
  dead_letter_container_id   = module.storage.dead_letter_container_id
  data_account_id            = module.storage.data_account_id
  state_container_id         = module.storage.state_container_id
  tags                       = local.tags
}

module "alerts" {
  source                = "./modules/alerts"
  resource_group_name   = azurerm_resource_group.main.name
  location              = var.location
  base_name             = local.base
  app_insights_id       = module.monitoring.app_insights_id
  action_group_id       = module.monitoring.action_group_id
  eventhub_namespace_id = module.eventhubs.namespace_id
  aks_id                = module.aks.id
  aks_name              = module.aks.name
  tags                  = local.tags
}
