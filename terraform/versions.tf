# Terraform and provider pins. State lives in an azurerm backend whose coordinates are passed at
# init time (`terraform init -backend-config=envs/<env>.backend.hcl`), so one configuration serves
# every environment; docs/runbook.md says how the state account is bootstrapped.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 5.12"
    }
  }

  backend "azurerm" {
    use_azuread_auth = true
  }
}

provider "azurerm" {
  # azurerm 5.x registers no resource provider by default; this configuration registers exactly
  # the ones it creates resources in (and nothing else, so it runs with least privilege).
  resource_providers_to_register = [
    "Microsoft.ContainerRegistry",
    "Microsoft.ContainerService",
    "Microsoft.EventHub",
    "Microsoft.Insights",
    "Microsoft.KeyVault",
    "Microsoft.ManagedIdentity",
    "Microsoft.OperationalInsights",
    "Microsoft.Storage",
    "Microsoft.Web",
  ]
  storage_use_azuread = true

  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
  }
}
