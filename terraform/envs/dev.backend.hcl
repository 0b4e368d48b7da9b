# terraform init -backend-config=envs/dev.backend.hcl  (the state account: docs/runbook.md, bootstrap)
resource_group_name  = "rg-marketflow-tfstate"
storage_account_name = "stmktflwtfstate"
container_name       = "tfstate"
key                  = "marketflow-dev.tfstate"
