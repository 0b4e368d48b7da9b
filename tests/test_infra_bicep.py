"""bicep/ at parity with terraform/: the same resources, names, hubs, settings and parameters,
parsed by pycep (checkov's Bicep parser; a file it cannot parse would be checked by nothing, so a
parse error fails here), and clean under checkov."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import infra
import pytest

from shared import topology

MAIN = infra.BICEP / "main.bicep"

# Terraform resource type -> ARM type. The resource group is not a Bicep resource (the template
# deploys into it); three ARM child resources are inline blocks in Terraform (INLINE below).
ARM = {
    "azurerm_log_analytics_workspace": "Microsoft.OperationalInsights/workspaces",
    "azurerm_application_insights": "Microsoft.Insights/components",
    "azurerm_monitor_action_group": "Microsoft.Insights/actionGroups",
    "azurerm_monitor_diagnostic_setting": "Microsoft.Insights/diagnosticSettings",
    "azurerm_monitor_metric_alert": "Microsoft.Insights/metricAlerts",
    "azurerm_monitor_scheduled_query_rules_alert_v2": "Microsoft.Insights/scheduledQueryRules",
    "azurerm_application_insights_workbook": "Microsoft.Insights/workbooks",
    "azurerm_storage_account": "Microsoft.Storage/storageAccounts",
    "azurerm_storage_container": "Microsoft.Storage/storageAccounts/blobServices/containers",
    "azurerm_eventhub_namespace": "Microsoft.EventHub/namespaces",
    "azurerm_eventhub": "Microsoft.EventHub/namespaces/eventhubs",
    "azurerm_eventhub_consumer_group": "Microsoft.EventHub/namespaces/eventhubs/consumergroups",
    "azurerm_key_vault": "Microsoft.KeyVault/vaults",
    "azurerm_service_plan": "Microsoft.Web/serverfarms",
    "azurerm_linux_function_app": "Microsoft.Web/sites",
    "azurerm_linux_function_app_slot": "Microsoft.Web/sites/slots",
    "azurerm_role_assignment": "Microsoft.Authorization/roleAssignments",
    "azurerm_container_registry": "Microsoft.ContainerRegistry/registries",
    "azurerm_kubernetes_cluster": "Microsoft.ContainerService/managedClusters",
    "azurerm_user_assigned_identity": "Microsoft.ManagedIdentity/userAssignedIdentities",
    "azurerm_federated_identity_credential":
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    "azurerm_public_ip": "Microsoft.Network/publicIPAddresses",
    "azurerm_monitor_workspace": "Microsoft.Monitor/accounts",
    "azurerm_monitor_data_collection_endpoint": "Microsoft.Insights/dataCollectionEndpoints",
    "azurerm_monitor_data_collection_rule": "Microsoft.Insights/dataCollectionRules",
    "azurerm_monitor_data_collection_rule_association": "Microsoft.Insights/dataCollectionRuleAssociations",
    "azurerm_monitor_alert_prometheus_rule_group": "Microsoft.AlertsManagement/prometheusRuleGroups",
}
INLINE = {
    "Microsoft.Storage/storageAccounts/blobServices": "azurerm_storage_account.blob_properties",
    "Microsoft.Web/sites/config": "azurerm_linux_function_app.sticky_settings",
    "Microsoft.ContainerRegistry/registries/replications": "azurerm_container_registry.georeplications",
}
ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Azure Event Hubs Data Receiver": "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",
    "Azure Event Hubs Data Sender": "2b629674-e913-4c01-ae53-ef4638d8f975",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}


def value(tree: dict[str, Any], section: str, name: str) -> Any:
    return tree[section][name]["value"] if "value" in tree[section][name] else tree[section][name]


def bicep_types() -> dict[str, int]:
    """ARM type -> number of declarations, over every module (existing references excluded)."""
    counts: dict[str, int] = {}
    for path in infra.bicep_files():
        for resource in infra.bicep(path).get("resources", {}).values():
            if resource["config"].get("existing"):
                continue
            counts[resource["type"]] = counts.get(resource["type"], 0) + 1
    return counts


def test_every_bicep_file_parses() -> None:
    assert len(infra.bicep_files()) == 9
    for path in infra.bicep_files():
        infra.bicep(path)


def test_same_resource_types_as_terraform() -> None:
    terraform = {ARM[t] for _, t, _, _ in infra.all_terraform_resources() if t != "azurerm_resource_group"}
    bicep = set(bicep_types())
    assert bicep - set(INLINE) == terraform


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render(template: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(?:var\.|local\.)?(\w+)\}", lambda m: variables[m.group(1)], template)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_same_names(env: str) -> None:
    tf_vars = {"environment": env, "project": "marketflow", "short_name": "mktflw"}
    tf_vars["base"] = render(infra.terraform_locals(infra.TERRAFORM / "main.tf")["base"], tf_vars)
    tf_names = {k: render(v, tf_vars) for k, v in infra.terraform_locals(infra.TERRAFORM / "main.tf")["names"].items()}
    tree = infra.bicep(MAIN)
    params = {"environment": env, "project": "marketflow", "shortName": "mktflw"}
    params["base"] = render(value(tree, "variables", "base"), params)
    bicep_names = {camel_to_snake(k): render(v, params) for k, v in value(tree, "variables", "names").items()}
    tf_names.pop("resource_group")
    assert bicep_names == tf_names


def test_hubs_consumer_groups_and_functions() -> None:
    tree = infra.bicep(MAIN)
    hubs = {h["name"]: {"partitions": h["partitions"], "consumer_groups": h["consumerGroups"],
                        "retention_hours": h["retentionHours"]} for h in value(tree, "variables", "hubs")}
    assert hubs == infra.terraform_locals(infra.TERRAFORM / "main.tf")["hubs"]
    assert hubs == {h.name: {"partitions": h.partitions, "consumer_groups": list(h.consumer_groups),
                             "retention_hours": h.retention_hours} for h in topology.HUBS.values()}
    pairs = [(g["hub"], g["group"]) for g in value(tree, "variables", "consumerGroups")]
    assert pairs == [(h.name, g) for h in topology.HUBS.values() for g in h.consumer_groups]
    assert value(tree, "variables", "eventhubFunctions") == \
        infra.terraform_locals(infra.TERRAFORM / "main.tf")["eventhub_functions"]


def test_same_settings_and_sticky_names() -> None:
    functions = infra.bicep(infra.BICEP / "modules" / "functions.bicep")
    tf = infra.terraform_locals(infra.TERRAFORM / "modules" / "functions" / "main.tf")
    common = {s["name"] for s in value(functions, "variables", "commonSettings")}
    # Terraform sets these two through provider arguments (functions_extension_version, site_config).
    provider_arguments = {"FUNCTIONS_EXTENSION_VERSION", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert common - provider_arguments == set(tf["common_settings"])
    sticky = value(functions, "variables", "stickySettings")
    text = str(sticky)
    for name in ("EVENTHUB__fullyQualifiedNamespace", "DEADLETTER_STORAGE__blobServiceUri",
                 "AzureWebJobsStorage__accountName", "disabledSettings"):
        assert name in text
    assert set(value(functions, "variables", "receiveHubs")) == set(tf["receive_hubs"])
    assert set(value(functions, "variables", "sendHubs")) == set(tf["send_hubs"])


def test_same_roles() -> None:
    tf_roles = {b["role_definition_name"] for _, t, _, b in infra.all_terraform_resources()
                if t == "azurerm_role_assignment" and not b["role_definition_name"].startswith("${")}
    aks = infra.terraform_locals(infra.TERRAFORM / "modules" / "aks" / "main.tf")
    tf_roles |= {r["role"] for r in aks["hub_roles"].values()}
    text = "\n".join(p.read_text() for p in infra.bicep_files())
    guid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    bicep_guids = set(re.findall(rf"^var \w+ = '({guid})'$", text, flags=re.M))
    assert {ROLES[r] for r in tf_roles} == bicep_guids


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_parameter_files_match_the_tfvars(env: str) -> None:
    params = infra.bicep_params(infra.BICEP / f"main.{env}.bicepparam")
    tfvars = infra.unquote(infra.terraform(infra.TERRAFORM / "envs" / f"{env}.tfvars"))
    tfvars.pop("tags")
    tfvars.pop("daily_loss_limit", None)
    renamed = {"functions_max_burst": "functionsMaxBurst", "aks_api_authorized_ip_ranges": "aksApiAuthorizedIpRanges"}
    for key, expected in tfvars.items():
        name = renamed.get(key) or re.sub(r"_(\w)", lambda m: m.group(1).upper(), key)
        assert params[name] == expected, key


def test_checkov_on_bicep(tmp_path: Path) -> None:
    report = infra.checkov(infra.BICEP, "bicep")
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] >= 20, report["summary"]
    assert infra.failures(report) == []
    annotations = infra.skip_annotations(list(infra.bicep_files()))
    for path, check, reason in annotations:
        assert len(reason) > 20, f"{path}: checkov skip {check} needs a reason"
    used = {(c["check_id"], c["file_path"].lstrip("/")) for c in infra.skipped(report)}
    stale = [(str(p.relative_to(infra.BICEP)), c) for p, c, _ in annotations
             if (c, str(p.relative_to(infra.BICEP))) not in used]
    assert stale == [], f"skips of checks that no longer fail (remove them): {stale}"
