"""The README documents every risk limit with its current default, and starts with the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from shared.risk import RiskConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_risk_key_with_its_default() -> None:
    text = README.read_text()
    rows = {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", text, re.M)}
    for key, field in RiskConfig.model_fields.items():
        assert key in rows, f"README does not document risk key {key}"
        default = field.get_default(call_default_factory=True)
        default = getattr(default, "value", default)
        expected = "unset" if default is None else ("{}" if default == {} else str(default))
        assert rows[key] == expected, f"README default of {key} is {rows[key]}, code says {expected}"


def test_readme_starts_with_make_run_and_make_test() -> None:
    first_block = README.read_text().split("```")[1]
    assert "make run" in first_block and "make test" in first_block
