environment                   = "dev"
location                      = "westeurope"
alert_email                   = "marketflow-dev-alerts@example.com"
functions_sku                 = "EP1"
functions_max_burst           = 4
eventhub_capacity             = 1
eventhub_max_throughput_units = 2
aks_node_count                = 2
aks_vm_size                   = "Standard_D2s_v5"
aks_api_authorized_ip_ranges  = ["203.0.113.0/24"]
log_retention_days            = 30
tags = {
  owner = "marketflow"
}
