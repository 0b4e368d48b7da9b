"""The deployed Functions and services hold no secret in a setting: every connection is identity-based.

Issue #8 item 10 asks that secrets resolve through Key Vault references in Azure. The Function App has
no secret to resolve: Event Hubs and storage are reached with its managed identity (SAS and shared
keys are switched off on the namespaces and accounts), and the Application Insights connection string
carries an ingestion key Microsoft does not consider a secret. The Binance keys, the only secrets,
live in Key Vault and reach the executor alone (the CSI driver, or azure-keyvault-secrets). These
tests keep it that way: a key read into a setting, or local auth switched back on, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from infra import BICEP, TERRAFORM, all_terraform_resources, bicep_files, terraform_files

# Expressions that read a key or a key-bearing connection string out of a resource.
KEY_READS = re.compile(
    r"primary_connection_string|secondary_connection_string|primary_access_key|secondary_access_key"
    r"|primary_key|secondary_key|default_primary_key|listKeys\(|listConnectionStrings\(|listkeys\("
    r"|AccountKey=|SharedAccessKey=", re.IGNORECASE)


def _lines_with_key_reads(paths: tuple[Path, ...]) -> list[str]:
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0] if path.suffix == ".tf" else line.split("//", 1)[0]
            if KEY_READS.search(code):
                found.append(f"{path}:{number}: {line.strip()}")
    return found


def test_no_stack_reads_a_key_or_a_key_bearing_connection_string() -> None:
    assert terraform_files() and bicep_files()
    assert _lines_with_key_reads(terraform_files()) == []
    assert _lines_with_key_reads(bicep_files()) == []


def test_the_pattern_finds_a_key_read_where_there_is_one(tmp_path: Path) -> None:
    stack = tmp_path / "terraform" / "modules" / "x"
    stack.mkdir(parents=True)
    bad = stack / "main.tf"
    bad.write_text('locals {\n  conn = azurerm_storage_account.data.primary_connection_string\n}\n'
                   '# primary_access_key in a comment is fine\n')
    assert _lines_with_key_reads((bad,)) == [
        f"{bad}:2: conn = azurerm_storage_account.data.primary_connection_string"]


def test_local_auth_is_off_on_every_namespace_and_account_in_terraform() -> None:
    namespaces = [(p, n, b) for p, t, n, b in all_terraform_resources() if t == "azurerm_eventhub_namespace"]
    accounts = [(p, n, b) for p, t, n, b in all_terraform_resources() if t == "azurerm_storage_account"]
    assert namespaces and accounts
    for path, name, body in namespaces:
        assert body.get("local_authentication_enabled") is False, f"{path}: {name} accepts SAS keys"
    for path, name, body in accounts:
        assert body.get("shared_access_key_enabled") is False, f"{path}: {name} accepts shared keys"


@pytest.mark.parametrize(("module", "resource", "setting"), [
    ("eventhubs.bicep", "Microsoft.EventHub/namespaces@", "disableLocalAuth: true"),
    ("storage.bicep", "Microsoft.Storage/storageAccounts@", "allowSharedKeyAccess: false"),
])
def test_local_auth_is_off_on_every_namespace_and_account_in_bicep(module: str, resource: str,
                                                                     setting: str) -> None:
    text = (BICEP / "modules" / module).read_text()
    declared = len(re.findall(rf"resource \w+ '{re.escape(resource)}", text))
    assert declared >= 1
    found = text.count(setting)
    assert found == declared, f"{module}: {declared} {resource} resources, {found} with {setting}"


def test_function_app_connections_name_an_identity_endpoint_not_a_key() -> None:
    """Each connection the triggers and stores read is `<setting>__fullyQualifiedNamespace`,
    `__blobServiceUri` or `__accountName` (identity-based), in both stacks."""
    tf = (TERRAFORM / "modules" / "functions" / "main.tf").read_text()
    bc = (BICEP / "modules" / "functions.bicep").read_text()
    for text in (tf, bc):
        assert "__fullyQualifiedNamespace" in text and "__blobServiceUri" in text
        assert "AzureWebJobsStorage__accountName" in text or "storage_uses_managed_identity = true" in text
    assert "storage_uses_managed_identity = true" in tf
