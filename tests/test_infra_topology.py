"""One topology: hub names, partition counts, consumer groups and connection settings in
Terraform, the Function bindings, host.json and the Helm values agree with shared/topology.py.

The function list comes from the registered functions of function_app.py (the v2 model's
`FunctionApp.get_functions()`), so a new Event Hub trigger is held to the same rules at once.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import infra
import pytest
import yaml

from shared import topology


@functools.cache
def registered_functions() -> tuple[Any, ...]:
    """function_app.py loaded as a fresh module (devhost.bindings.load_app): azure-functions builds
    an app's functions once, and other tests index `function_app.app` itself."""
    from devhost.bindings import load_app

    return tuple(load_app("function_app", infra.ROOT).get_functions())


def trigger(fn: Any) -> dict[str, Any]:
    (binding,) = [b for b in json.loads(fn.get_function_json())["bindings"] if b["direction"] == "IN"
                  and b["type"].endswith("Trigger")]
    return dict(binding)


def eventhub_functions() -> dict[str, dict[str, Any]]:
    found = {fn.get_function_name(): trigger(fn) for fn in registered_functions()}
    return {name: b for name, b in found.items() if b["type"] == "eventHubTrigger"}


def tf_locals() -> dict[str, Any]:
    return infra.terraform_locals(infra.TERRAFORM / "main.tf")


def test_terraform_hubs_are_the_topology() -> None:
    hubs = tf_locals()["hubs"]
    expected = {h.name: {"partitions": h.partitions, "consumer_groups": list(h.consumer_groups),
                         "retention_hours": h.retention_hours} for h in topology.HUBS.values()}
    assert hubs == expected


def test_terraform_creates_every_hub_and_consumer_group_from_that_map() -> None:
    resources = {(t, n): b for _, t, n, b in infra.terraform_resources_of("eventhubs")}
    assert resources[("azurerm_eventhub", "hub")]["for_each"] == "${var.hubs}"
    assert resources[("azurerm_eventhub", "hub")]["partition_count"] == "${each.value.partitions}"
    assert resources[("azurerm_eventhub_consumer_group", "group")]["name"] == "${each.value.group}"
    main = infra.terraform(infra.TERRAFORM / "main.tf")
    modules = {infra.unquote(k): infra.unquote(v) for block in main["module"] for k, v in block.items()}
    for name in ("eventhubs", "eventhubs_staging"):
        assert modules[name]["hubs"] == "${local.hubs}"


def test_every_eventhub_binding_is_in_the_topology() -> None:
    functions = eventhub_functions()
    assert {"signals", "risk"} <= set(functions)
    for name, binding in functions.items():
        hub = topology.hub(binding["eventHubName"])
        assert binding["consumerGroup"] in hub.consumer_groups, name
        assert binding["connection"] == topology.EVENTHUB_CONNECTION_SETTING, name
        assert binding["cardinality"].lower() == "many", name


def test_staging_disables_every_eventhub_trigger() -> None:
    listed = tf_locals()["eventhub_functions"]
    missing = set(eventhub_functions()) - set(listed)
    assert not missing, f"add {sorted(missing)} to eventhub_functions in terraform/main.tf (and bicep)"
    body = {n: b for _, t, n, b in infra.terraform_resources_of("functions") if t == "azurerm_linux_function_app"}
    sticky = body["main"]["sticky_settings"][0]["app_setting_names"]
    assert sticky == "${local.sticky_settings}"
    module_locals = infra.terraform_locals(infra.TERRAFORM / "modules" / "functions" / "main.tf")
    assert module_locals["disabled_settings"] == '${[for f in var.eventhub_functions : "AzureWebJobs.${f}.Disabled"]}'
    names = module_locals["sticky_settings"]
    for setting in ("local.eventhub_setting", "local.dead_letter_setting", '"AzureWebJobsStorage__accountName"',
                    "local.disabled_settings"):
        assert setting in names
    assert module_locals["dead_letter_setting"] == "DEADLETTER_STORAGE__blobServiceUri"
    assert module_locals["state_setting"] == "STATE_STORAGE__blobServiceUri"  # risk and positions need it
    assert module_locals["eventhub_setting"] == f"{topology.EVENTHUB_CONNECTION_SETTING}__fullyQualifiedNamespace"
    # staging: its own namespace and account, triggers off; production: triggers on.
    staging = module_locals["staging_settings"]
    assert "var.eventhub_staging_fqdn" in staging and '"true"' in staging
    assert "var.eventhub_namespace_fqdn" in module_locals["production_settings"]


def test_storage_containers_are_the_topology() -> None:
    module_locals = infra.terraform_locals(infra.TERRAFORM / "modules" / "storage" / "main.tf")
    assert topology.DEAD_LETTER_CONTAINER in module_locals["data_containers"]
    assert topology.CHECKPOINT_CONTAINER in module_locals["data_containers"]
    assert topology.STATE_CONTAINER in module_locals["data_containers"]
    assert module_locals["staging_containers"] == [topology.DEAD_LETTER_CONTAINER, topology.STATE_CONTAINER]


def test_host_json() -> None:
    host = json.loads((infra.ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    hubs = host["extensions"]["eventHubs"]
    assert 1 <= hubs["maxEventBatchSize"] <= hubs["prefetchCount"]


@pytest.mark.parametrize("values", infra.values_files(), ids=lambda p: p.stem)
def test_helm_service_accounts_are_the_federated_subjects(values: Any) -> None:
    chart = yaml.safe_load((infra.CHART / "values.yaml").read_text())
    aks = infra.terraform_locals(infra.TERRAFORM / "modules" / "aks" / "main.tf")
    assert {"executor": chart["executor"]["serviceAccountName"],
            "ingestor": chart["ingestor"]["serviceAccountName"]} == aks["service_accounts"]
    variables = infra.unquote(infra.terraform(infra.TERRAFORM / "variables.tf"))
    namespace = next(v["kubernetes_namespace"]["default"] for v in variables["variable"] if "kubernetes_namespace" in v)
    docs = infra.render_chart(values, namespace=namespace)
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    assert accounts == set(aks["service_accounts"].values())
    env = yaml.safe_load(values.read_text())
    tfvars = infra.unquote(infra.terraform(infra.TERRAFORM / "envs" / f"{values.stem.removeprefix('values-')}.tfvars"))
    assert env["azure"]["eventHubNamespace"] == f"evhns-marketflow-{tfvars['environment']}.servicebus.windows.net"


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    """A container's environment as rendered; secret references get a placeholder value."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "from-a-secret") for e in container["env"]}


@pytest.mark.parametrize("values", infra.values_files(), ids=lambda p: p.stem)
def test_the_rendered_services_settings_load_and_name_the_terraform_resources(values: Any) -> None:
    """Each service's rendered environment is accepted by its own settings loader, every connection
    it opens resolves to an identity-based endpoint, and those endpoints are the resources Terraform
    names for that environment (tfvars environment, main.tf names)."""
    from aks_executor.main import CONNECTION_SETTINGS
    from aks_executor.settings import ServiceSettings
    from aks_ingestor.settings import IngestSettings
    from shared.adapters.azure.settings import resolve_connection

    env_name = values.stem.removeprefix("values-")
    names = {k: v.replace("${local.base}", f"marketflow-{env_name}").replace("${var.short_name}", "mktflw")
             .replace("${var.environment}", env_name) for k, v in tf_locals()["names"].items()}
    deployments = {d["metadata"]["name"]: d for d in infra.render_chart(values) if d["kind"] == "Deployment"}
    executor = container_env(deployments["marketflow-executor"])
    ingestor = container_env(deployments["marketflow-ingestor"])
    ServiceSettings.from_env(executor)
    IngestSettings.from_env(ingestor)
    endpoints = {"EVENTHUB": f"{names['eventhub_namespace']}.servicebus.windows.net",
                 "CHECKPOINT_STORAGE": f"https://{names['storage_data']}.blob.core.windows.net/",
                 "DEADLETTER_STORAGE": f"https://{names['storage_data']}.blob.core.windows.net/",
                 "INTENT_STORAGE": f"https://{names['storage_data']}.table.core.windows.net/",
                 "STATE_STORAGE": f"https://{names['storage_data']}.blob.core.windows.net/"}
    properties = {"EVENTHUB": "fullyQualifiedNamespace", "INTENT_STORAGE": "tableServiceUri"}
    for setting in CONNECTION_SETTINGS:
        if setting not in endpoints:
            continue  # Application Insights: a secret reference, optional
        conn = resolve_connection(setting, properties.get(setting, "blobServiceUri"), executor)
        assert conn.uses_identity and conn.endpoint == endpoints[setting], (env_name, setting)
    for setting in ("EVENTHUB", "CHECKPOINT_STORAGE", "DEADLETTER_STORAGE"):
        conn = resolve_connection(setting, properties.get(setting, "blobServiceUri"), ingestor)
        assert conn.uses_identity and conn.endpoint == endpoints[setting], (env_name, setting)
    image = deployments["marketflow-executor"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith(f"{names['container_registry']}.azurecr.io/marketflow:")
