# What the workflows read (`terraform output -raw NAME`): where to deploy and what to smoke-test.
output "resource_group_name" {
  value = azurerm_resource_group.main.name
}

output "function_app_name" {
  value = module.functions.function_app_name
}

output "function_app_staging_hostname" {
  description = "Host name of the staging slot (smoke test: GET https://<this>/api/health)."
  value       = module.functions.staging_hostname
}

output "function_app_hostname" {
  value = module.functions.hostname
}

output "eventhub_namespace_fqdn" {
  value = module.eventhubs.namespace_fqdn
}

output "eventhub_staging_namespace_fqdn" {
  description = "The staging slot's namespace; the smoke test sends its synthetic kline here."
  value       = module.eventhubs_staging.namespace_fqdn
}

output "acr_login_server" {
  value = module.acr.login_server
}

output "aks_name" {
  value = module.aks.name
}

output "executor_client_id" {
  description = "Client id of the executor's workload identity (Helm value executor.workloadIdentity.clientId)."
  value       = module.aks.executor_client_id
}

output "ingestor_client_id" {
  description = "Client id of the ingestor's workload identity (Helm value ingestor.workloadIdentity.clientId)."
  value       = module.aks.ingestor_client_id
}

output "key_vault_uri" {
  value = module.keyvault.uri
}

output "data_blob_endpoint" {
  value = module.storage.data_blob_endpoint
}
