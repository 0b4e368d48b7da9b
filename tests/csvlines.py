"""Helpers for tests that craft CSV files from the bundled samples' lines."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def set_field(line: str, col: int, value: str) -> str:
    cells = line.split(",")
    cells[col] = value
    return ",".join(cells)
