"""The executor's lease on one machine: an exclusive `flock` on a file under the state directory.

The kernel drops the lock the moment the holding process exits, however it exits, so a standby
polling the file takes over within its retry interval. The epoch is kept in the file itself
(JSON), bumped by each new holder while it holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

LEASE_FILE = "executor.lease"


class FileLease:
    """An `flock` lease; `flock` locks belong to an open file, so two of these in one process
    compete exactly as two processes do."""

    def __init__(self, path: str | os.PathLike[str], holder: str | None = None) -> None:
        self.path = Path(path)
        self.holder = holder or f"pid-{os.getpid()}"
        self._fd: int | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def duration_s(self) -> float | None:
        return None

    def __repr__(self) -> str:
        return f"FileLease({str(self.path)!r})"

    async def acquire(self) -> int | None:
        if self._fd is not None:
            return self._read_epoch(self._fd)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        epoch = self._read_epoch(fd) + 1
        record = json.dumps({"epoch": epoch, "holder": self.holder}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        os.fsync(fd)
        self._fd = fd
        return epoch

    @staticmethod
    def _read_epoch(fd: int) -> int:
        raw = os.pread(fd, 4096, 0)
        try:
            return int(json.loads(raw)["epoch"]) if raw.strip() else 0
        except (ValueError, KeyError, TypeError):
            return 0

    async def renew(self) -> bool:
        """Still ours while our descriptor holds the lock on the file the path names (a file
        deleted or replaced under us is a lost lease: a new holder may lock the new file)."""
        if self._fd is None:
            return False
        try:
            ours, current = os.fstat(self._fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (ours.st_dev, ours.st_ino) == (current.st_dev, current.st_ino)

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
