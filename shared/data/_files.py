"""File plumbing shared by the readers: plain CSV or a one-member zip, as lines or as text pieces.

`read_lines` reads a file at once and splits it on newlines (Binance files are tens of MB at
most); `open_text` streams it in pieces, which spares touching fresh memory for all of its bytes
and all of its text (page faults are a good part of a bulk read's cost). Time units are
normalised here too, because Binance moved its spot archives from milliseconds to microseconds on
2025-01-01.
"""

from __future__ import annotations

import codecs
import platform
import sysconfig
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from .quality import DataError, Problem

# Any epoch time at or above this is in microseconds: as milliseconds it would be year 5138, and
# as microseconds it is 1973, before any exchange data exists.
US_THRESHOLD = 100_000_000_000_000
# And at or above this it would be nanoseconds, which no Binance file uses.
NS_THRESHOLD = 100_000_000_000_000_000
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


# -- x87 precision -----------------------------------------------------------------------------------
#
# CPython builds that can reach the x87 FPU (HAVE_GCC_ASM_FOR_X87: GCC or Clang on x86) switch its
# precision control to 53 bits around every string <-> float conversion (float("1.5"), repr) and
# back again afterwards, because their correctly rounded dtoa needs double precision. Each switch
# is an FLDCW, and the pair is more than half the cost of float(str) on AMD EPYC (about 75 of
# 150 ns). CPython skips both when the control word already says 53-bit precision and round to
# nearest, so the readers set that for the duration of a bulk parse and restore the caller's
# environment afterwards. The parsed values are the same bits either way (dtoa runs at 53-bit
# precision regardless); Python float arithmetic uses SSE2, which ignores the x87 control word;
# and the control word is per thread, so only the reading thread sees the change, while it reads.

_X87_PRECISION_BITS = 0x0F00  # precision control (bits 8-9) and rounding control (bits 10-11)
_X87_DOUBLE = 0x0200  # 53-bit precision, round to nearest: what CPython's dtoa switches to
_FENV_BYTES = 256  # room for any fenv_t (glibc and musl x86-64: 32 bytes; macOS: 16)


class _Fenv:
    """fegetenv/fesetenv through ctypes, looked up on first use; `usable` False where pointless."""

    probed = False
    usable = False
    ctypes: Any = None
    get: Any = None
    put: Any = None

    @classmethod
    def probe(cls) -> bool:
        if not cls.probed:
            cls.probed = True
            cls.usable = cls._load()
        return cls.usable

    @classmethod
    def _load(cls) -> bool:
        if not sysconfig.get_config_var("HAVE_GCC_ASM_FOR_X87"):
            return False  # this CPython never touches the x87 control word: nothing to save
        if platform.machine().lower() not in {"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"}:
            return False
        try:
            import ctypes

            libc = ctypes.CDLL(None)
            get, put = libc.fegetenv, libc.fesetenv
        except (ImportError, OSError, AttributeError):
            return False
        for fn in (get, put):
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = ctypes.c_int
        cls.ctypes, cls.get, cls.put = ctypes, get, put
        return True


class X87DoublePrecision:
    """Context manager: the block runs with the x87 FPU at 53-bit precision, so float(str) skips two
    FLDCWs a call; `paused()` gives the caller's environment back for a while (to run a callback).

    A no-op where it does not apply (no x87, a CPython that does not switch precision, no fenv
    functions, a control word that is already right or does not look like one). The caller's
    floating-point environment is restored on exit, also when the block raises.
    """

    __slots__ = ("_saved",)

    def __init__(self) -> None:
        self._saved: Any = None  # the caller's fenv_t while switched, else None

    def __enter__(self) -> X87DoublePrecision:
        if not _Fenv.probe():
            return self
        saved = _Fenv.ctypes.create_string_buffer(_FENV_BYTES)
        if _Fenv.get(saved) != 0:
            return self
        cw = int.from_bytes(saved.raw[:2], "little")
        want = (cw & ~_X87_PRECISION_BITS) | _X87_DOUBLE
        # An x87 control word has bit 6 set and bits 7 and 13-15 clear; anything else means fenv_t
        # is not laid out as assumed (control word first), so leave the environment alone.
        if want == cw or (cw & 0xE0C0) != 0x0040:
            return self
        changed = _Fenv.ctypes.create_string_buffer(saved.raw, _FENV_BYTES)
        changed[0:2] = want.to_bytes(2, "little")
        if _Fenv.put(changed) == 0:
            self._saved = saved
        else:
            _Fenv.put(saved)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            _Fenv.put(self._saved)
            self._saved = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()
