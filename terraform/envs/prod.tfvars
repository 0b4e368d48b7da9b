environment                   = "prod"
location                      = "westeurope"
alert_email                   = "marketflow-oncall@example.com"
functions_sku                 = "EP2"
functions_max_burst           = 4
eventhub_capacity             = 2
eventhub_max_throughput_units = 8
aks_node_count                = 3
aks_vm_size                   = "Standard_D4s_v5"
aks_api_authorized_ip_ranges  = ["203.0.113.0/24"]
log_retention_days            = 90
tags = {
  owner = "marketflow"
}
