# The Function App (signals, risk, positions) on an Elastic Premium Linux plan, Python 3.11, with
# a `staging` slot that can neither consume nor publish production events: its Event Hub
# triggers are disabled by slot-sticky AzureWebJobs.<function>.Disabled settings, and its
# EVENTHUB, AzureWebJobsStorage and DEADLETTER_STORAGE point at the staging namespace and
# account, also slot-sticky, so a swap never carries them into production.
# Every connection is identity-based: the app's and the slot's system identities hold only the
# roles below.

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "names" { type = map(string) }
variable "sku_name" { type = string }
variable "maximum_elastic_worker_count" { type = number }
variable "host_storage_account_name" { type = string }
variable "host_storage_account_id" { type = string }
variable "staging_storage_account_name" { type = string }
variable "staging_storage_account_id" { type = string }
variable "data_blob_endpoint" { type = string }
variable "staging_blob_endpoint" { type = string }
variable "dead_letter_container_id" { type = string }
variable "state_container_id" { type = string }
variable "eventhub_namespace_fqdn" { type = string }
variable "eventhub_staging_fqdn" { type = string }
variable "eventhub_ids" { type = map(string) }
variable "eventhub_staging_namespace" { type = string }
variable "eventhub_functions" { type = list(string) }
variable "app_insights_connection" {
  type      = string
  sensitive = true
}
variable "tags" { type = map(string) }

locals {
  # shared/topology.py EVENTHUB_CONNECTION_SETTING, identity-based; STATE_STORAGE holds the shared
  # documents (account snapshot, trading state, per-partition state; container marketflow-state).
  eventhub_setting    = "EVENTHUB__fullyQualifiedNamespace"
  dead_letter_setting = "DEADLETTER_STORAGE__blobServiceUri"
  state_setting       = "STATE_STORAGE__blobServiceUri"
  disabled_settings   = [for f in var.eventhub_functions : "AzureWebJobs.${f}.Disabled"]

  # Travels with a swap: what the code does, not where it connects.
  common_settings = {
    FUNCTIONS_WORKER_RUNTIME = "python"
    OTEL_SERVICE_NAME        = "marketflow-functions"
    # The Python worker configures the Azure Monitor distro itself (host.json telemetryMode is
    # OpenTelemetry); shared/telemetry.py then never configures a second exporter.
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY = "true"
    PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME      = "marketflow"
    MARKETFLOW_STRATEGY                         = "sma_cross"
    MARKETFLOW_STRATEGY_PARAMS                  = "fast=10 slow=20"
    SCM_DO_BUILD_DURING_DEPLOYMENT              = "false"
  }

  production_settings = merge(local.common_settings, {
    (local.eventhub_setting)    = var.eventhub_namespace_fqdn
    (local.dead_letter_setting) = var.data_blob_endpoint
    (local.state_setting)       = var.data_blob_endpoint
  }, { for s in local.disabled_settings : s => "false" })

  staging_settings = merge(local.common_settings, {
    (local.eventhub_setting)    = var.eventhub_staging_fqdn
    (local.dead_letter_setting) = var.staging_blob_endpoint
    (local.state_setting)       = var.staging_blob_endpoint
  }, { for s in local.disabled_settings : s => "true" })

  # Slot-sticky: stay with their slot through a swap.
  sticky_settings = concat([
    local.eventhub_setting,
    local.dead_letter_setting,
    local.state_setting,
    "AzureWebJobsStorage__accountName",
  ], local.disabled_settings)

  # Least privilege per hub: the functions receive what they consume and send what they produce.
  receive_hubs = ["market-data", "signals", "executions"]
  send_hubs    = ["signals", "orders"]
}

resource "azurerm_service_plan" "main" {
  #checkov:skip=CKV_AZURE_212:instance count is governed by Event Hubs partitions (one instance per partition is useful), see docs/capacity.md
  #checkov:skip=CKV_AZURE_225:zone redundancy needs three always-ready EP instances; prod can set it when the cost is justified (docs/capacity.md)
  name                         = var.names.service_plan
  resource_group_name          = var.resource_group_name
  location                     = var.location
  os_type                      = "Linux"
  sku_name                     = var.sku_name
  maximum_elastic_worker_count = var.maximum_elastic_worker_count
  tags                         = var.tags
}

resource "azurerm_linux_function_app" "main" {
  #checkov:skip=CKV_AZURE_221:public network access is needed for the deployment (functions-action) and the health endpoint; no VNet in this stack
  #checkov:skip=CKV_AZURE_70:https_only is set; checkov reads an older argument name
  name                          = var.names.function_app
  resource_group_name           = var.resource_group_name
  location                      = var.location
  service_plan_id               = azurerm_service_plan.main.id
  storage_account_name          = var.host_storage_account_name
  storage_uses_managed_identity = true
  functions_extension_version   = "~4"
  https_only                    = true
  public_network_access_enabled = true
  client_certificate_enabled    = true
  client_certificate_mode       = "Optional"
  app_settings                  = local.production_settings
  tags                          = var.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = var.app_insights_connection
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    minimum_tls_version                    = "1.2"
    elastic_instance_minimum               = 1
    runtime_scale_monitoring_enabled       = true

    application_stack {
      python_version = "3.11"
    }
  }

  sticky_settings {
    app_setting_names = local.sticky_settings
  }
}

resource "azurerm_linux_function_app_slot" "staging" {
  #checkov:skip=CKV_AZURE_221:same as the production app (deployment and health endpoint need it)
  #checkov:skip=CKV_AZURE_70:https_only is set; checkov reads an older argument name
  name                          = "staging"
  function_app_id               = azurerm_linux_function_app.main.id
  storage_account_name          = var.staging_storage_account_name
  storage_uses_managed_identity = true
  functions_extension_version   = "~4"
  https_only                    = true
  public_network_access_enabled = true
  client_certificate_enabled    = true
  client_certificate_mode       = "Optional"
  app_settings                  = local.staging_settings
  tags                          = var.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = var.app_insights_connection
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    minimum_tls_version                    = "1.2"
    elastic_instance_minimum               = 1
    runtime_scale_monitoring_enabled       = true

    application_stack {
      python_version = "3.11"
    }
  }
}

# --- production identity: its own host storage, dead letters, and the hubs it uses ----------
resource "azurerm_role_assignment" "host_storage" {
  scope                = var.host_storage_account_id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_linux_function_app.main.identity[0].principal_id
}

resource "azurerm_role_assignment" "dead_letters" {
  scope                = var.dead_letter_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_linux_function_app.main.identity[0].principal_id
}

resource "azurerm_role_assignment" "state" {
  scope                = var.state_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_linux_function_app.main.identity[0].principal_id
}

resource "azurerm_role_assignment" "receive" {
  for_each             = toset(local.receive_hubs)
  scope                = var.eventhub_ids[each.value]
  role_definition_name = "Azure Event Hubs Data Receiver"
  principal_id         = azurerm_linux_function_app.main.identity[0].principal_id
}

resource "azurerm_role_assignment" "send" {
  for_each             = toset(local.send_hubs)
  scope                = var.eventhub_ids[each.value]
  role_definition_name = "Azure Event Hubs Data Sender"
  principal_id         = azurerm_linux_function_app.main.identity[0].principal_id
}

# --- staging identity: the staging account and namespace only -------------------------------
resource "azurerm_role_assignment" "staging_storage" {
  scope                = var.staging_storage_account_id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_linux_function_app_slot.staging.identity[0].principal_id
}

resource "azurerm_role_assignment" "staging_receive" {
  scope                = var.eventhub_staging_namespace
  role_definition_name = "Azure Event Hubs Data Receiver"
  principal_id         = azurerm_linux_function_app_slot.staging.identity[0].principal_id
}

resource "azurerm_role_assignment" "staging_send" {
  scope                = var.eventhub_staging_namespace
  role_definition_name = "Azure Event Hubs Data Sender"
  principal_id         = azurerm_linux_function_app_slot.staging.identity[0].principal_id
}

output "function_app_name" {
  value = azurerm_linux_function_app.main.name
}

output "hostname" {
  value = azurerm_linux_function_app.main.default_hostname
}

output "staging_hostname" {
  value = azurerm_linux_function_app_slot.staging.default_hostname
}
