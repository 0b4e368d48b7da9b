variable "environment" {
  description = "Environment name (dev, prod); part of every resource name."
  type        = string
  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "location" {
  description = "Azure region of every resource."
  type        = string
  default     = "westeurope"
}

variable "project" {
  description = "Short project name used in resource names (lower case letters and digits)."
  type        = string
  default     = "marketflow"
}

variable "short_name" {
  description = "Up to 8 lower-case letters/digits for globally unique names (storage, ACR, Key Vault)."
  type        = string
  default     = "mktflw"
}

variable "alert_email" {
  description = "Where the action group sends alert e-mails."
  type        = string
}

variable "functions_sku" {
  description = "Elastic Premium plan size (EP1, EP2, EP3): deployment slots and pre-warmed instances."
  type        = string
  default     = "EP1"
}

variable "functions_max_burst" {
  description = "Most instances the Elastic Premium plan scales out to (Event Hubs caps useful instances at the partition count)."
  type        = number
  default     = 4
}

variable "eventhub_capacity" {
  description = "Throughput units of the production Event Hubs namespace (Standard tier)."
  type        = number
  default     = 1
}

variable "eventhub_max_throughput_units" {
  description = "Auto-inflate ceiling of the production namespace; 0 turns auto-inflate off."
  type        = number
  default     = 4
}

variable "aks_node_count" {
  description = "Nodes in the AKS system pool (the executor's two replicas spread across them)."
  type        = number
  default     = 2
}

variable "aks_vm_size" {
  description = "VM size of the AKS system pool."
  type        = string
  default     = "Standard_D2s_v5"
}

variable "aks_api_authorized_ip_ranges" {
  description = "CIDRs allowed to reach the AKS API server (CI runners, operators)."
  type        = list(string)
}

variable "kubernetes_namespace" {
  description = "Namespace the Helm chart installs into; part of the federated credentials' subjects."
  type        = string
  default     = "marketflow"
}

variable "log_retention_days" {
  description = "Log Analytics retention."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
