"""A report folder written whole or not at all.

The files go into a hidden temporary folder beside `--out` and the folder is renamed into place
once every file is written, so an interrupted or failed run leaves no report and an earlier
report in the same `--out` untouched (never a new summary.json beside an old report.html, never a
cut equity.csv that looks complete). Renames within one parent folder are atomic on POSIX; a
replaced report is first renamed aside, then removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from types import TracebackType

#: The files a report folder holds; a folder with anything else is never replaced.
REPORT_FILES = frozenset({"summary.json", "trades.csv", "equity.csv", "report.html"})


class OutError(ValueError):
    """`--out` cannot take a report; the message names the path and why."""


def check_out(out: Path, files: frozenset[str] = REPORT_FILES) -> None:
    """Raise OutError unless a report can be renamed into `out`: `out` is absent or a report
    folder (or empty) holding only `files`, and its nearest existing ancestor is a writable folder."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutError(f"{out} is a file, not a folder")
        foreign = sorted(p.name for p in out.iterdir() if p.name not in files)
        if foreign:
            raise OutError(f"{out} holds files that are not part of a report ({', '.join(foreign[:5])}); "
                           "choose an empty folder or an earlier report folder")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutError(f"{out}: {parent} is a regular file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutError(f"{out}: cannot write in {parent}")


class ReportFolder:
    """The staging folder of one report: write into `.staging`, then `commit()`; leaving the
    `with` block without a commit (an error, Ctrl-C) removes the staging folder. `files` are the
    names the kind of folder holds (a replay's report by default, a sweep's table)."""

    def __init__(self, out: Path, files: frozenset[str] = REPORT_FILES) -> None:
        self.out = Path(out)
        self.files = files
        check_out(self.out, files)
        parent = self.out.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            # mkdir (not mkdtemp, which makes it private): the report gets the umask's permissions.
            self.staging = parent / f".{self.out.name}.partial-{uuid.uuid4().hex[:12]}"
            self.staging.mkdir()
        except OSError as exc:
            raise OutError(f"{self.out}: cannot create a folder in {parent} ({exc.strerror or exc})") from None
        self.committed = False

    def commit(self) -> Path:
        """Rename the staging folder to `out` (replacing an earlier report there); returns `out`."""
        out = self.out
        if out.exists():
            check_out(out, self.files)  # still a report folder: nothing else gets removed
            aside = out.absolute().parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, aside)
            try:
                os.rename(self.staging, out)
            except BaseException:
                os.rename(aside, out)
                raise
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(self.staging, out)
        self.committed = True
        return out

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> ReportFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.committed:
            self.discard()
