# The registry the executor/ingestor image is pushed to (tagged with the commit, and with the
# release version for releases). Premium for geo-replication (prod), retention and zone
# redundancy; admin user off: AKS pulls with its kubelet identity (AcrPull), CI pushes with OIDC.
# azurerm 5.x: `encryption` is no longer computed; it is left unset on purpose (customer-managed
# keys off, Microsoft-managed encryption at rest always on), and each geo-replication sets
# `global_endpoint_routing_enabled`, now required.

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "name" { type = string }
variable "geo_replication_location" {
  type    = string
  default = null
}
variable "log_analytics_workspace_id" { type = string }
variable "tags" { type = map(string) }

resource "azurerm_container_registry" "main" {
  #checkov:skip=CKV_AZURE_139:public access is needed by CI runners and AKS without a VNet; admin user and anonymous pull are off
  #checkov:skip=CKV_AZURE_166:image quarantine needs a scanner in the push path; images are built only by the deploy workflow from main
  #checkov:skip=CKV_AZURE_237:dedicated data endpoints are only useful with firewall rules, which public access here does not use
  #checkov:skip=CKV_AZURE_233:zone redundancy is on (zone_redundancy_enabled); checkov does not read it from this provider version
  #checkov:skip=CKV_AZURE_164:content trust (trust_policy_enabled) was retired by the service and removed in azurerm 5.x; images are referenced by commit tag from our own pipeline
  #checkov:skip=CKV_AZURE_165:geo-replication is set for prod only (dev pays for one region); see georeplications below
  name                          = var.name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  sku                           = "Premium"
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  public_network_access_enabled = true
  zone_redundancy_enabled       = true
  retention_policy_in_days      = 7
  tags                          = var.tags

  dynamic "georeplications" {
    for_each = var.geo_replication_location == null ? [] : [var.geo_replication_location]
    content {
      location                        = georeplications.value
      zone_redundancy_enabled         = true
      global_endpoint_routing_enabled = true
    }
  }
}

resource "azurerm_monitor_diagnostic_setting" "registry" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_container_registry.main.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "allLogs"
  }
}

output "id" {
  value = azurerm_container_registry.main.id
}

output "login_server" {
  value = azurerm_container_registry.main.login_server
}
