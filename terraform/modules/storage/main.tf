# Three accounts, none with shared keys (every client uses Entra ID):
#   host    - the Function App's AzureWebJobsStorage (leases, checkpoints of the triggers)
#   data    - dead letters, the executor's checkpoints and Event Hubs Capture (replay input)
#   staging - the staging slot's AzureWebJobsStorage and dead letters, never production's

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "names" { type = map(string) }
variable "log_analytics_workspace_id" { type = string }
variable "tags" { type = map(string) }

locals {
  accounts = {
    host    = var.names.storage_host
    data    = var.names.storage_data
    staging = var.names.storage_staging
  }
  # shared/topology.py DEAD_LETTER_CONTAINER and CHECKPOINT_CONTAINER, the Capture target, and
  # the executor's single-writer lease (MARKETFLOW_LEASE=blob, container `leases`).
  data_containers    = ["dead-letter", "checkpoints", "capture", "leases", "marketflow-state"]
  staging_containers = ["dead-letter", "marketflow-state"]
}

resource "azurerm_storage_account" "main" {
  for_each = local.accounts
  #checkov:skip=CKV_AZURE_35:the Elastic Premium Functions host and AKS pods reach storage without a VNet, so the firewall cannot default to deny; access is Entra ID only (shared keys off)
  #checkov:skip=CKV_AZURE_33:no queues are used (Event Hubs triggers only), so there is no queue logging to turn on
  #checkov:skip=CKV_AZURE_59:the Functions host and the AKS pods reach storage over public endpoints with Entra ID; private endpoints need a VNet this stack does not build
  #checkov:skip=CKV_AZURE_206:LRS/ZRS by design: dead letters and checkpoints are rebuildable, Capture is the only copy worth GRS and it is re-readable from the hubs' retention
  #checkov:skip=CKV2_AZURE_1:customer-managed keys are not required; Microsoft-managed encryption at rest is on
  #checkov:skip=CKV2_AZURE_33:no private endpoints (see CKV_AZURE_59)
  #checkov:skip=CKV2_AZURE_40:shared keys are off (shared_access_key_enabled = false); checkov does not read the 5.x argument
  #checkov:skip=CKV2_AZURE_41:no SAS is ever issued (shared keys are off)
  #checkov:skip=CKV2_AZURE_38:soft delete of containers is enabled in blob_properties; the check wants file-share settings this account has no shares for
  #checkov:skip=CKV_AZURE_244:local users are not used; shared keys are off
  name                            = each.value
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "ZRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  shared_access_key_enabled       = false
  allow_nested_items_to_be_public = false
  public_network_access_enabled   = true
  default_to_oauth_authentication = true
  local_user_enabled              = false
  tags                            = var.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  network_rules {
    default_action = "Allow"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }
}

resource "azurerm_storage_container" "data" {
  for_each = toset(local.data_containers)
  #checkov:skip=CKV2_AZURE_21:blob read logging goes to Log Analytics through the account's diagnostic setting
  name                  = each.value
  storage_account_id    = azurerm_storage_account.main["data"].id
  container_access_type = "private"
}

resource "azurerm_storage_container" "staging" {
  for_each = toset(local.staging_containers)
  #checkov:skip=CKV2_AZURE_21:blob read logging goes to Log Analytics through the account's diagnostic setting
  name                  = each.value
  storage_account_id    = azurerm_storage_account.main["staging"].id
  container_access_type = "private"
}

resource "azurerm_monitor_diagnostic_setting" "blob" {
  for_each                   = local.accounts
  name                       = "to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.main[each.key].id}/blobServices/default"
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "allLogs"
  }
}

output "host_account_name" {
  value = azurerm_storage_account.main["host"].name
}

output "host_account_id" {
  value = azurerm_storage_account.main["host"].id
}

output "staging_account_name" {
  value = azurerm_storage_account.main["staging"].name
}

output "staging_account_id" {
  value = azurerm_storage_account.main["staging"].id
}

output "data_account_id" {
  value = azurerm_storage_account.main["data"].id
}

output "data_blob_endpoint" {
  value = azurerm_storage_account.main["data"].primary_blob_endpoint
}

output "staging_blob_endpoint" {
  value = azurerm_storage_account.main["staging"].primary_blob_endpoint
}

output "capture_container_name" {
  value = azurerm_storage_container.data["capture"].name
}

output "dead_letter_container_id" {
  value = azurerm_storage_container.data["dead-letter"].id
}

output "lease_container_id" {
  value = azurerm_storage_container.data["leases"].id
}

output "state_container_id" {
  value = azurerm_storage_container.data["marketflow-state"].id
}

output "checkpoint_container_id" {
  value = azurerm_storage_container.data["checkpoints"].id
}
