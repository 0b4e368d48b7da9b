"""The AKS image, checked offline (no Docker engine here): Dockerfile structure, the build
context .dockerignore leaves, the executor's pins against requirements.txt and the constraints'
transitive closure, and that the executor's import closure needs neither pyarrow nor
azure-functions.

Not checked here: that `docker build` succeeds (no engine). The constraints were resolved in a
fresh venv by `scripts/lock.sh` (pip install --dry-run --only-binary=:all:), which also writes
constraints.txt, the lock of the whole test venv; both are checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("azure-functions", "pyarrow", "pandas", "ta-lib", "backtesting", "pytest")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # every line is exactly one == pin
        assert spec.operator == "==", f"{path.name}: {line} is not pinned with =="
        pins[_name(req.name)] = spec.version
    return pins


# --- Dockerfile --------------------------------------------------------------------------------


class Stage:
    def __init__(self, base: str, name: str | None) -> None:
        self.base, self.name = base, name
        self.instructions: list[tuple[str, str]] = []

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> list[Stage]:
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    stages: list[Stage] = []
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert m, line
            stages.append(Stage(m.group(1), m.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def test_dockerfile_is_multi_stage_with_a_runtime_that_copies_only_the_built_venv() -> None:
    stages = _stages()
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert build.name == "build" and runtime.name == "runtime"
    (install,) = [r for r in build.all("RUN") if "pip install" in r]
    assert "-r /tmp/deps/requirements-executor.txt" in install and "-c /tmp/deps/constraints-executor.txt" in install
    assert "--only-binary=:all:" in install
    assert "requirements.txt" not in " ".join(build.all("COPY")).replace("requirements-executor.txt", "")
    copies = runtime.all("COPY")
    assert "--from=build /opt/venv /opt/venv" in copies
    assert not any("pip install" in r for r in runtime.all("RUN"))  # no compilers or caches in the runtime
    sources = [c.split()[0] for c in copies if not c.startswith("--from")]
    assert sources == ["shared/", "aks_executor/", "aks_ingestor/"]


def test_the_runtime_is_not_root_probes_healthz_and_runs_the_executor() -> None:
    runtime = _stages()[-1]
    (user,) = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid not in ("root", "0") and int(uid) >= 1000
    assert any(f"--uid {uid}" in r for r in runtime.all("RUN"))
    (health,) = runtime.all("HEALTHCHECK")
    assert "/healthz" in health and "--timeout=" in health and "CMD" in health
    assert runtime.all("EXPOSE") == ["8000"]
    env = " ".join(runtime.all("ENV"))
    assert "MARKETFLOW_STATE_DIR=/var/lib/marketflow" in env  # the intent store: the one path it writes
    assert any(f"install -d -o {uid} -g {uid}" in r and "/var/lib/marketflow" in r for r in runtime.all("RUN"))
    assert runtime.all("CMD") == ['["python", "-m", "aks_executor"]']  # exec form: Python is PID 1, gets SIGTERM
    last_user = max(i for i, (kw, _) in enumerate(runtime.instructions) if kw == "USER")
    assert all(kw not in ("RUN", "COPY") for kw, _ in runtime.instructions[last_user:])


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for negated, pattern in rules:
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif glob.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif glob[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif glob[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(glob[i]), i + 1
        rules.append((negated, re.compile(regex)))
    return rules


def test_the_build_context_holds_no_sample_data_tests_or_caches() -> None:
    rules = _dockerignore()
    files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts
             and ".venv" not in p.parts and ".azurite" not in p.parts]
    context = {f for f in files if not _ignored(f, rules)}
    samples = [f for f in files if f.startswith("shared/samples/") and not f.endswith(".py")]
    assert samples, "the repo bundles sample data: this test must see it"
    assert not context & set(samples)
    assert "shared/samples/__init__.py" in context  # the module imports; its data is not there
    assert "aks_executor/__main__.py" in context and "shared/execution/__init__.py" in context
    assert {"requirements-executor.txt", "constraints-executor.txt"} <= context
    for f in context:
        assert not f.startswith(("tests/", "benchmarks/", "functions/", "docs/", "reports/")), f
        assert "__pycache__" not in f and not f.endswith((".zip", ".csv", ".pyc")), f
    assert "requirements.txt" not in context and "function_app.py" not in context


# --- requirements ------------------------------------------------------------------------------


def test_the_executor_pins_agree_with_requirements_txt_and_leave_out_the_functions_only_packages() -> None:
    executor, functions = _pins(ROOT / "requirements-executor.txt"), _pins(ROOT / "requirements.txt")
    for name, version in executor.items():
        if name in functions:
            assert functions[name] == version, f"{name}: {version} here, {functions[name]} in requirements.txt"
    for name in FORBIDDEN:
        assert name not in executor
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements-executor.txt" in dev  # the test venv has what the executor runs with


ENV_311 = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def _unmet(lock: dict[str, str]) -> list[str]:
    """What the lock leaves out or pins outside a range, read from each pinned package's installed
    metadata (the test venv holds every pin at its version: checked by the caller)."""
    missing: list[str] = []
    for name in lock:
        for spec in metadata.distribution(name).requires or []:
            req = Requirement(spec)
            if req.marker is not None and not req.marker.evaluate(ENV_311):
                continue  # an extra, or another platform
            dep = _name(req.name)
            if dep not in lock:
                missing.append(f"{name} needs {dep}")
            elif not req.specifier.contains(lock[dep], prereleases=True):
                missing.append(f"{name} needs {req}, constraints pin {lock[dep]}")
    return missing


def test_the_venv_holds_every_locked_package_at_its_locked_version() -> None:
    """`make` installs with -c constraints.txt: a release on the index since the lock (pycryptodome
    4.5.0 over a locked 4.4.0 broke a clean clone's CI once) changes nothing."""
    wrong: list[str] = []
    for name, version in _pins(ROOT / "constraints.txt").items():
        try:
            installed = metadata.distribution(name).version
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != version:
            wrong.append(f"{name}: venv has {installed}, constraints.txt pins {version}")
    assert not wrong, "rebuild the venv: rm -rf .venv && make test\n" + "\n".join(wrong)


def test_the_constraints_pin_every_requirement_and_are_closed_under_their_dependencies() -> None:
    executor, lock = _pins(ROOT / "requirements-executor.txt"), _pins(ROOT / "constraints-executor.txt")
    for name, version in executor.items():
        assert lock.get(name) == version, f"{name}=={version} is not pinned the same in constraints-executor.txt"
    for name in FORBIDDEN:
        assert name not in lock
    venv = _pins(ROOT / "constraints.txt")
    assert {name: venv.get(name) for name in lock} == lock, "the two locks pin a package differently"
    assert not _unmet(lock)


def test_the_venv_lock_pins_every_requirement_and_is_closed_under_their_dependencies() -> None:
    lock = _pins(ROOT / "constraints.txt")
    for req in ("requirements.txt", "requirements-dev.txt", "requirements-executor.txt"):
        for name, version in _pins(ROOT / req).items():
            assert lock.get(name) == version, f"{name}=={version} in {req} is not pinned the same in constraints.txt"
    assert not _unmet(lock)


def test_every_install_of_the_requirements_is_under_the_lock() -> None:
    """Each pip install of requirements.txt or requirements-dev.txt (make, the deploy workflows'
    Function App packages and smoke test) passes -c constraints.txt."""
    installs = 0
    for path in (ROOT / "Makefile", ROOT / ".gitlab-ci.yml", *sorted((ROOT / ".github/workflows").glob("*.yml"))):
        for line in path.read_text().splitlines():
            if "pip install" in line and re.search(r"-r (\S*/)?requirements(-dev)?\.txt", line):
                installs += 1
                assert "-c constraints.txt" in line, f"{path.name}: {line.strip()}"
    assert installs >= 6


def test_the_executors_import_closure_needs_neither_pyarrow_nor_azure_functions() -> None:
    """Import everything the service imports, eagerly or lazily, with the Functions-only packages
    made unimportable: the image (which lacks them) can run it."""
    script = textwrap.dedent("""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("pyarrow", "pandas") or name.startswith("azure.functions"):
                    raise ImportError(f"{name} is not in the executor image")
                return None

        sys.meta_path.insert(0, Block())
        import aks_executor.main, aks_executor.service, aks_executor.app  # noqa
        import aks_ingestor.main, aks_ingestor.ingestor, websockets.asyncio.client  # noqa
        import shared.adapters.azure.blob_lease, shared.adapters.azure.keyvault  # noqa
        import shared.adapters.local.file_lease, shared.cli, shared.cli.executor, aks_executor.secrets  # noqa
        import shared.adapters.local.intent_store, shared.adapters.binance.venue  # noqa
        import azure.eventhub.aio, azure.eventhub.extensions.checkpointstoreblobaio  # noqa
        import azure.storage.blob.aio, azure.keyvault.secrets, azure.identity.aio  # noqa
        import aiohttp.web, prometheus_client, binance  # noqa
        shared.cli.build_parser()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
