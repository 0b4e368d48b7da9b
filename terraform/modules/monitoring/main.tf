# Log Analytics, workspace-based Application Insights (where the OpenTelemetry distro exports
# traces, logs and the marketflow.* metrics) and the action group every alert notifies.
# Alert rules, the workbook and managed Prometheus: modules/alerts.

variable "resource_group_name" { type = string }
variable "location" { type = string }
variable "names" { type = map(string) }
variable "alert_email" { type = string }
variable "retention_days" { type = number }
variable "tags" { type = map(string) }

resource "azurerm_log_analytics_workspace" "main" {
  name                = var.names.log_analytics
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = "PerGB2018"
  retention_in_days   = var.retention_days
  tags                = var.tags
}

resource "azurerm_application_insights" "main" {
  name                = var.names.app_insights
  location            = var.location
  resource_group_name = var.resource_group_name
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "other"
  tags                = var.tags
}

resource "azurerm_monitor_action_group" "main" {
  name                = var.names.action_group
  resource_group_name = var.resource_group_name
  short_name          = "marketflow"
  tags                = var.tags

  email_receiver {
    name                    = "oncall"
    email_address           = var.alert_email
    use_common_alert_schema = true
  }
}

output "log_analytics_workspace_id" {
  value = azurerm_log_analytics_workspace.main.id
}

output "app_insights_id" {
  value = azurerm_application_insights.main.id
}

output "app_insights_connection_string" {
  value     = azurerm_application_insights.main.connection_string
  sensitive = true
}

output "action_group_id" {
  value = azurerm_monitor_action_group.main.id
}
