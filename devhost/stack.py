"""Child processes of a local stack: start each with its own log file, wait until it listens,
stop them all (SIGTERM, then SIGKILL after a grace period) in reverse order."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# scripts/test.sh installs Azurite with the same script, from the same lock.
NPM_INSTALL = Path(__file__).resolve().parents[1] / "scripts" / "npm" / "install.sh"
AZURITE_PORTS = (10000, 10001, 10002)


class StackError(RuntimeError):
    """A process of the stack did not start; the message names it and its log file."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Stack:
    """The processes started so far; `stop()` ends them last-started first."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], wait_port: int | None = None,
              timeout_s: float = 60.0, cwd: Path | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=dict(env), cwd=cwd, start_new_session=True)
        child = Child(name, process, log)
        self.children.append(child)
        if wait_port is not None:
            deadline = time.monotonic() + timeout_s
            while not port_open(wait_port):
                if process.poll() is not None:
                    raise StackError(f"{name} exited with status {process.returncode} before listening on "
                                     f"{wait_port}; its log: {log}")
                if time.monotonic() > deadline:
                    raise StackError(f"{name} did not listen on {wait_port} within {timeout_s:.0f} s; its log: {log}")
                time.sleep(0.1)
        return child

    def check(self) -> None:
        """Raise if a child has died (a stack with a dead part must not report as running)."""
        for child in self.children:
            if child.process.poll() is not None:
                raise StackError(f"{child.name} exited with status {child.process.returncode}; its log: {child.log}")

    def stop(self, grace_s: float = 10.0) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()


def azurite_command(install_dir: Path) -> list[str]:
    """Azurite from npm, exactly as scripts/npm/azurite/package-lock.json locks it (installed into
    `install_dir` on first use), in memory, on loopback."""
    binary = install_dir / "node_modules" / ".bin" / "azurite"
    if shutil.which("npm") is not None:  # a no-op when the folder holds this lock's install
        subprocess.run(["bash", str(NPM_INSTALL), "azurite", str(install_dir)], check=True, stdout=subprocess.DEVNULL)
    elif not binary.exists():
        raise StackError("Azurite is not installed and npm is not on PATH (install Node.js)")
    return [str(binary), "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent",
            "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1"]
