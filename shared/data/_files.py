"""File plumbing shared by the readers: plain CSV or a one-member zip, read whole, split into lines.

Reading a file at once and splitting on newlines is the cheapest way to feed the per-row loop
(Binance files are tens of MB at most). Time units are normalised here too, because Binance moved
its spot archives from milliseconds to microseconds on 2025-01-01.
"""

from __future__ import annotations

import gc
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .quality import DataError, Problem

# Any epoch time at or above this is in microseconds: as milliseconds it would be year 5138, and
# as microseconds it is 1973, before any exchange data exists.
US_THRESHOLD = 100_000_000_000_000
# And at or above this it would be nanoseconds, which no Binance file uses.
NS_THRESHOLD = 100_000_000_000_000_000
CHUNK = 10_000  # rows between progress callbacks

PathLike = str | Path


def as_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Accept one path or many; keep the caller's order (it is the time order)."""
    if isinstance(paths, str | Path):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("no input files given")
    return out


def read_lines(path: Path) -> tuple[str, list[str]]:
    """(name used in messages, lines without terminators) of a .csv or a zip holding one CSV."""
    source = str(path)
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if not n.endswith("/")]
                if len(members) != 1:
                    raise DataError([Problem(source, None, f"expected one CSV in the zip, found "
                                                           f"{len(members)}: {members[:5]}")])
                source = f"{path}[{members[0]}]"
                raw = zf.read(members[0])
        else:
            raw = path.read_bytes()
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DataError([Problem(source, None, f"not a readable zip archive ({exc})")]) from None
    except OSError as exc:
        raise DataError([Problem(source, None, f"cannot read file ({exc.strerror or exc})")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError([Problem(source, None, f"not UTF-8 text (byte {exc.start})")]) from None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError([Problem(source, None, "file is empty")])
    return source, lines


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a reader allocates one object per row.

    Bars and ticks hold no reference cycles, so collections during a bulk load find nothing, yet
    they would re-walk the growing list again and again (about a fifth of the decode time).
    The previous state is restored even if the reader raises.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
