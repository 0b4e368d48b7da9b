# One namespace with every hub of shared/topology.py: partition count, consumer groups, retention,
# and (production) Capture to Blob storage so a day can be replayed later.

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "namespace_name" { type = string }
variable "hubs" {
  type = map(object({
    partitions      = number
    consumer_groups = list(string)
    retention_hours = number
  }))
}
variable "capacity" { type = number }
variable "maximum_throughput_units" { type = number }
variable "capture_storage_account_id" {
  type    = string
  default = null
}
variable "capture_container_name" {
  type    = string
  default = null
}
variable "log_analytics_workspace_id" { type = string }
variable "tags" { type = map(string) }

locals {
  capture = var.capture_storage_account_id != null
  consumer_groups = merge([
    for hub, spec in var.hubs : { for group in spec.consumer_groups : "${hub}/${group}" => { hub = hub, group = group } }
  ]...)
}

resource "azurerm_eventhub_namespace" "main" {
  name                          = var.namespace_name
  location                      = var.location
  resource_group_name           = var.resource_group_name
  sku                           = "Standard"
  capacity                      = var.capacity
  auto_inflate_enabled          = var.maximum_throughput_units > 0
  maximum_throughput_units      = var.maximum_throughput_units > 0 ? var.maximum_throughput_units : null
  local_authentication_enabled  = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = true
  tags                          = var.tags
}

resource "azurerm_eventhub" "hub" {
  for_each          = var.hubs
  name              = each.key
  namespace_id      = azurerm_eventhub_namespace.main.id
  partition_count   = each.value.partitions
  message_retention = ceil(each.value.retention_hours / 24)

  dynamic "capture_description" {
    for_each = local.capture ? [1] : []
    content {
      enabled             = true
      encoding            = "Avro"
      interval_in_seconds = 300
      size_limit_in_bytes = 314572800
      skip_empty_archives = true

      destination {
        name                = "EventHubArchive.AzureBlockBlob"
        archive_name_format = "{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}"
        blob_container_name = var.capture_container_name
        storage_account_id  = var.capture_storage_account_id
      }
    }
  }
}

resource "azurerm_eventhub_consumer_group" "group" {
  for_each            = local.consumer_groups
  name                = each.value.group
  namespace_name      = azurerm_eventhub_namespace.main.name
  eventhub_name       = azurerm_eventhub.hub[each.value.hub].name
  resource_group_name = var.resource_group_name
}

resource "azurerm_monitor_diagnostic_setting" "namespace" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_eventhub_namespace.main.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "allLogs"
  }

  enabled_metric {
    category = "AllMetrics"
  }
}

output "namespace_id" {
  value = azurerm_eventhub_namespace.main.id
}

output "namespace_fqdn" {
  value = "${azurerm_eventhub_namespace.main.name}.servicebus.windows.net"
}

output "hub_ids" {
  value = { for name, hub in azurerm_eventhub.hub : name => hub.id }
}
