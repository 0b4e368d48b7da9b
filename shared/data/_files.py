"""File plumbing shared by the readers: plain CSV or a one-member zip, as lines or as text pieces.

`read_lines` reads a file at once and splits it on newlines (Binance files are tens of MB at
most); `open_text` streams it in pieces, which spares touching fresh memory for all of its bytes
and all of its text (page faults are a good part of a bulk read's cost). Time units are
normalised here too, because Binance moved its spot archives from milliseconds to microseconds on
2025-01-01.
"""

from __future__ import annotations

import codecs
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from .quality import DataError, Problem

# Any epoch time at or above this is in microseconds: as milliseconds it would be year 5138, and
# as microseconds it is 1973, before any exchange data exists.
US_THRESHOLD = 100_000_000_000_000
# And at or above this it would be nanoseconds, which no Binance file uses.
NS_THRESHOLD = 100_000_000_000_000_000
# A time (in ms, after unit normalisation) at or after 2100-01-01 UTC is an error: market history
# that far ahead is a unit or typing mistake (year 5138 is still a valid millisecond time).
FUTURE_MS = 4_102_444_800_000
CHUNK = 10_000  # rows between progress callbacks
# Read and decoded at a time by `open_text`: about 1,800 Binance kline rows (a daily 1m file),
# small enough for a reader's work on one piece to stay in cache, big enough for the per-piece
# costs not to matter.
PIECE_BYTES = 1 << 18

PathLike = str | Path


def as_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Accept one path or many; keep the caller's order (it is the time order)."""
    if isinstance(paths, str | Path):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise ValueError("no input files given")
    return out


def read_text(path: Path) -> tuple[str, str]:
    """(name used in messages, decoded text) of a .csv or a zip holding one CSV; "" if it is empty."""
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
        return source, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError([Problem(source, None, f"not UTF-8 text (byte {exc.start})")]) from None


@contextmanager
def open_text(path: Path) -> Iterator[tuple[str, Iterator[str]]]:
    """(name used in messages, decoded text in pieces of about PIECE_BYTES) of a .csv or a zip
    holding one CSV, read as it is consumed: together the pieces are `read_text(path)`'s text.

    Reading piece by piece keeps the memory a file passes through small and reused, instead of
    touching fresh pages for all of its bytes and then all of its text. The same problems raise
    the same DataErrors as `read_text`; those only found while reading (a bad CRC, a byte that is
    not UTF-8) surface when the piece holding them is reached.
    """
    source = str(path)
    with ExitStack() as stack:
        try:
            if path.suffix.lower() == ".zip":
                zf = stack.enter_context(zipfile.ZipFile(path))
                members = [n for n in zf.namelist() if not n.endswith("/")]
                if len(members) != 1:
                    raise DataError([Problem(source, None, f"expected one CSV in the zip, found "
                                                           f"{len(members)}: {members[:5]}")])
                source = f"{path}[{members[0]}]"
                fh: IO[bytes] = stack.enter_context(zf.open(members[0]))
            else:
                fh = stack.enter_context(path.open("rb"))
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise DataError([Problem(source, None, f"not a readable zip archive ({exc})")]) from None
        except OSError as exc:
            raise DataError([Problem(source, None, f"cannot read file ({exc.strerror or exc})")]) from None
        yield source, _pieces(path, source, fh)


def _pieces(path: Path, source: str, fh: IO[bytes]) -> Iterator[str]:
    decode = codecs.getincrementaldecoder("utf-8-sig")().decode
    try:
        while raw := fh.read(PIECE_BYTES):
            if text := decode(raw):
                yield text
        if text := decode(b"", True):
            yield text
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DataError([Problem(source, None, f"not a readable zip archive ({exc})")]) from None
    except OSError as exc:
        raise DataError([Problem(source, None, f"cannot read file ({exc.strerror or exc})")]) from None
    except UnicodeDecodeError as exc:
        # The byte offset the whole-file decode reports (it counts from after a BOM); reading
        # again only happens on this error path.
        read_text(path)
        raise DataError([Problem(source, None, f"not UTF-8 text ({exc.reason})")]) from None


def empty_file(source: str) -> DataError:
    return DataError([Problem(source, None, "file is empty")])


def read_lines(path: Path) -> tuple[str, list[str]]:
    """(name used in messages, lines without terminators) of a .csv or a zip holding one CSV.

    Lines end at LF or CRLF; a final empty line (the file ends with a terminator) is dropped.
    """
    source, text = read_text(path)
    if "\r" not in text:
        lines = text.split("\n")
    else:
        # Splitting on "\r\n" is what replacing "\r\n" by "\n" and splitting on "\n" gives when
        # every "\n" is part of a "\r\n"; any other "\n" takes the long way.
        lines = text.split("\r\n")
        if text.count("\n") != len(lines) - 1:
            lines = text.replace("\r\n", "\n").split("\n")
    del text
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise empty_file(source)
    return source, lines
