# AKS for the executor and the ingestor: workload identity (the OIDC issuer is on by default in
# azurerm 5.x and set explicitly here), Azure RBAC, Cilium network policy (the chart's
# NetworkPolicy), managed Prometheus for the /metrics endpoints, and one static egress IP so the
# Binance API key can be restricted to it.
# Each service has a user-assigned identity federated with its Kubernetes service account, with
# only the roles it needs.

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "names" { type = map(string) }
variable "node_count" { type = number }
variable "vm_size" { type = string }
variable "api_authorized_ip_ranges" { type = list(string) }
variable "kubernetes_namespace" { type = string }
variable "log_analytics_workspace_id" { type = string }
variable "acr_id" { type = string }
variable "key_vault_id" { type = string }
variable "eventhub_ids" { type = map(string) }
variable "checkpoint_container_id" { type = string }
variable "lease_container_id" { type = string }
variable "dead_letter_container_id" { type = string }
variable "data_account_id" { type = string }
variable "state_container_id" { type = string }
variable "tags" { type = map(string) }

data "azurerm_client_config" "current" {}

locals {
  # helm/marketflow service accounts; the federated credentials' subjects name them.
  service_accounts = {
    executor = "marketflow-executor"
    ingestor = "marketflow-ingestor"
  }
}

resource "azurerm_public_ip" "egress" {
  name                = "pip-${var.names.aks}-egress"
  resource_group_name = var.resource_group_name
  location            = var.location
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = ["1", "2", "3"]
  tags                = var.tags
}

resource "azurerm_kubernetes_cluster" "main" {
  #checkov:skip=CKV_AZURE_6:authorized ranges are set in api_server_access_profile from var.api_authorized_ip_ranges; checkov cannot resolve the variable
  #checkov:skip=CKV_AZURE_115:public API server restricted to api_authorized_ip_ranges; a private cluster needs a VNet and jump host this stack does not build
  #checkov:skip=CKV_AZURE_117:no disk encryption set: Microsoft-managed keys encrypt the OS disks
  #checkov:skip=CKV_AZURE_226:ephemeral OS disks need a VM size with a cache disk; the default Dsv5 sizes have none
  #checkov:skip=CKV_AZURE_227:host encryption needs the EncryptionAtHost feature registered on the subscription; docs/runbook.md bootstrap turns it on where allowed
  #checkov:skip=CKV_AZURE_232:one pool by design (two small services); critical add-ons share it
  name                      = var.names.aks
  location                  = var.location
  resource_group_name       = var.resource_group_name
  dns_prefix                = var.names.aks
  sku_tier                  = "Standard"
  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"
  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  local_account_disabled    = true
  azure_policy_enabled      = true
  tags                      = var.tags

  default_node_pool {
    name                 = "system"
    vm_size              = var.vm_size
    node_count           = var.node_count
    max_pods             = 50
    zones                = ["1", "2", "3"]
    auto_scaling_enabled = false

    upgrade_settings {
      max_surge = "33%"
    }
  }

  # Required by azurerm 5.x; Manual keeps the pool above authoritative (no node auto-provisioning).
  node_provisioning_profile {
    mode = "Manual"
  }

  identity {
    type = "SystemAssigned"
  }

  azure_active_directory_role_based_access_control {
    tenant_id          = data.azurerm_client_config.current.tenant_id
    azure_rbac_enabled = true
  }

  api_server_access_profile {
    authorized_ip_ranges = var.api_authorized_ip_ranges
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    outbound_type       = "loadBalancer"

    load_balancer_profile {
      outbound_ip_address_ids = [azurerm_public_ip.egress.id]
    }
  }

  oms_agent {
    log_analytics_workspace_id      = var.log_analytics_workspace_id
    msi_auth_for_monitoring_enabled = true
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  monitor_metrics {}
}

resource "azurerm_role_assignment" "acr_pull" {
  scope                = var.acr_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_kubernetes_cluster.main.kubelet_identity[0].object_id
}

resource "azurerm_user_assigned_identity" "service" {
  for_each            = local.service_accounts
  name                = each.key == "executor" ? var.names.executor_identity : var.names.ingestor_identity
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_federated_identity_credential" "service" {
  for_each                  = local.service_accounts
  name                      = "aks-${each.key}"
  user_assigned_identity_id = azurerm_user_assigned_identity.service[each.key].id
  audience                  = ["api://AzureADTokenExchange"]
  issuer                    = azurerm_kubernetes_cluster.main.oidc_issuer_url
  subject                   = "system:serviceaccount:${var.kubernetes_namespace}:${each.value}"
}

locals {
  # (identity, hub, role): the executor consumes orders and market-data and publishes
  # executions; the ingestor only publishes market-data.
  hub_roles = {
    "executor/orders/receive"      = { identity = "executor", hub = "orders", role = "Azure Event Hubs Data Receiver" }
    "executor/market-data/receive" = { identity = "executor", hub = "market-data", role = "Azure Event Hubs Data Receiver" }
    "executor/executions/send"     = { identity = "executor", hub = "executions", role = "Azure Event Hubs Data Sender" }
    "ingestor/market-data/send"    = { identity = "ingestor", hub = "market-data", role = "Azure Event Hubs Data Sender" }
  }
}

resource "azurerm_role_assignment" "hub" {
  for_each             = local.hub_roles
  scope                = var.eventhub_ids[each.value.hub]
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.service[each.value.identity].principal_id
}

# The executor's Event Hubs checkpoints and its lease, and dead letters from both services.
resource "azurerm_role_assignment" "executor_checkpoints" {
  scope                = var.checkpoint_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.service["executor"].principal_id
}

resource "azurerm_role_assignment" "executor_lease" {
  scope                = var.lease_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.service["executor"].principal_id
}

# The executor's intent store (Table storage, shared by both replicas: the standby that takes the
# lease over finds every intent and the book). Scoped to the data account, the narrowest scope that
# exists before the executor creates its table at start; the data account holds no other tables.
resource "azurerm_role_assignment" "executor_intents" {
  scope                = var.data_account_id
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = azurerm_user_assigned_identity.service["executor"].principal_id
}

# The shared trading state (kill switch) the executor's last look reads and its ban alarm writes.
resource "azurerm_role_assignment" "executor_state" {
  scope                = var.state_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.service["executor"].principal_id
}

resource "azurerm_role_assignment" "dead_letters" {
  for_each             = local.service_accounts
  scope                = var.dead_letter_container_id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.service[each.key].principal_id
}

# Only the executor reads the Binance keys.
resource "azurerm_role_assignment" "executor_secrets" {
  scope                = var.key_vault_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.service["executor"].principal_id
}

output "id" {
  value = azurerm_kubernetes_cluster.main.id
}

output "name" {
  value = azurerm_kubernetes_cluster.main.name
}

output "oidc_issuer_url" {
  value = azurerm_kubernetes_cluster.main.oidc_issuer_url
}

output "executor_client_id" {
  value = azurerm_user_assigned_identity.service["executor"].client_id
}

output "ingestor_client_id" {
  value = azurerm_user_assigned_identity.service["ingestor"].client_id
}

output "egress_ip" {
  value = azurerm_public_ip.egress.ip_address
}
