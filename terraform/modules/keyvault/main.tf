# Key Vault with Azure RBAC (no access policies): the Binance API key and secret live here and are
# read by the executor's workload identity only (Key Vault Secrets User, granted in modules/aks).

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "name" { type = string }
variable "log_analytics_workspace_id" { type = string }
variable "tags" { type = map(string) }

data "azurerm_client_config" "current" {}

resource "azurerm_key_vault" "main" {
  #checkov:skip=CKV_AZURE_189:public access with network ACLs defaulting to Deny; the AKS egress IPs and operators are added per environment
  #checkov:skip=CKV2_AZURE_32:no private endpoint: this stack builds no VNet for it (network ACLs deny by default instead)
  name                          = var.name
  location                      = var.location
  resource_group_name           = var.resource_group_name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  public_network_access_enabled = true
  tags                          = var.tags

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
  }
}

resource "azurerm_monitor_diagnostic_setting" "vault" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_key_vault.main.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "audit"
  }
}

output "id" {
  value = azurerm_key_vault.main.id
}

output "uri" {
  value = azurerm_key_vault.main.vault_uri
}
