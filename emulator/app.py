"""Run the emulator: the AMQP server, the health endpoint, retention sweeps and Capture, in one event loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import CaptureConfig, ConfigError, NamespaceConfig, from_hubs, load_config, with_overrides
from .options import add_arguments
from .server import Server
from .store import Namespace

log = logging.getLogger("emulator")
SWEEP_SECONDS = 30.0


def connection_string(host: str, port: int, hub: str | None = None, *, key_name: str = "RootManageSharedAccessKey",
                      key: str = "SAS_KEY_VALUE") -> str:
    """The connection string the stock SDK uses against this emulator."""
    cs = (f"Endpoint=sb://{host}:{port};SharedAccessKeyName={key_name};SharedAccessKey={key};"
          "UseDevelopmentEmulator=true")
    return cs + (f";EntityPath={hub}" if hub else "")


async def _health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """`GET /health` -> 200 `{"status":"healthy"}`, as Microsoft's emulator answers on port 5300."""
    try:
        line = await asyncio.wait_for(reader.readline(), 5)
        while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
            pass
        parts = line.decode("latin-1").split()
        if len(parts) >= 2 and parts[0] in ("GET", "HEAD") and parts[1].split("?")[0] == "/health":
            status, body = "200 OK", b'{"status":"healthy"}'
        else:
            status, body = "404 Not Found", b'{"status":"not found"}'
        head = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        writer.write(head + (body if parts and parts[0] != "HEAD" else b""))
        await writer.drain()
    except (TimeoutError, ConnectionError, UnicodeDecodeError):
        pass
    finally:
        writer.close()


@dataclass
class Emulator:
    """A running emulator (in this process, on the calling event loop)."""

    server: Server
    namespace: Namespace
    host: str
    port: int
    health_port: int | None
    tasks: list[asyncio.Task[Any]]
    health_server: asyncio.base_events.Server | None
    capture: Any

    def connection_string(self, hub: str | None = None) -> str:
        return connection_string(self.host, self.port, hub, key_name=self.server.key_name, key=self.server.key)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.health_server is not None:
            self.health_server.close()
            await self.health_server.wait_closed()
        await self.server.stop()
        if self.capture is not None:
            self.capture.flush_all()
        self.namespace.close()


async def _sweep(namespace: Namespace, capture: Any) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS if capture is None else min(SWEEP_SECONDS, capture.tick_seconds))
        dropped = namespace.expire()
        if dropped:
            log.info("retention dropped %d events", dropped)
        if capture is not None:
            capture.tick()


async def start(config: NamespaceConfig, *, host: str = "127.0.0.1", port: int = 5672,
                health_port: int | None = 5300, data_dir: str | Path | None = None,
                capture_dir: str | Path | None = None, key_name: str = "RootManageSharedAccessKey",
                key: str = "SAS_KEY_VALUE") -> Emulator:
    """Start serving `config` (port 0 or health_port 0: any free port; health_port None: no health endpoint)."""
    namespace = Namespace(config, data_dir)
    server = Server(namespace, key_name=key_name, key=key)
    capture = None
    if capture_dir is not None:
        from .capture import Capture

        capture = Capture(namespace, Path(capture_dir))
        server.appended_listeners.append(capture.on_appended)
    bound = await server.start(host, port)
    health = None
    hport = None
    if health_port is not None:
        health = await asyncio.start_server(_health, host, health_port)
        hport = int(health.sockets[0].getsockname()[1])
    tasks = [asyncio.create_task(_sweep(namespace, capture))]
    return Emulator(server, namespace, host, bound, hport, tasks, health, capture)


class BackgroundEmulator:
    """An emulator on its own event loop thread (tests and tools that use the sync SDK)."""

    def __init__(self, config: NamespaceConfig, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulator", daemon=True)
        self._thread.start()
        self.emulator: Emulator = asyncio.run_coroutine_threadsafe(start(config, **kwargs), self._loop).result(30)

    def connection_string(self, hub: str | None = None) -> str:
        return self.emulator.connection_string(hub)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the emulator's loop and return its result (to inspect state safely)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> BackgroundEmulator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def resolve_config(args: argparse.Namespace, default_hubs: Any = None) -> NamespaceConfig:
    """The namespace from --config, else `default_hubs`, else the one hub Microsoft's sample config has."""
    if args.config:
        config = load_config(args.config)
    elif default_hubs is not None:
        config = from_hubs(default_hubs)
    else:
        config = load_default()
    capture = None
    if args.capture_dir:
        capture = CaptureConfig(True, args.capture_interval, args.capture_size)
    return with_overrides(config, retention_hours=args.retention_hours, capture=capture)


def load_default() -> NamespaceConfig:
    """MarketFlow's topology when it is importable (the emulator never needs it), else hub `eh1`."""
    try:
        from shared import topology  # optional: only to default to MarketFlow's hubs
    except ImportError:
        from .config import HubConfig

        return NamespaceConfig("emulatorNs1", (HubConfig("eh1", 2, ("$Default", "cg1")),))
    return from_hubs(topology.HUBS.values())


def run(args: argparse.Namespace, default_hubs: Any = None) -> int:
    """Serve until Ctrl-C / SIGTERM (the `marketflow emulator` and `python -m emulator` entry)."""
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = resolve_config(args, default_hubs)

    async def main() -> None:
        emu = await start(config, host=args.host, port=args.port,
                          health_port=None if args.health_port < 0 else args.health_port,
                          data_dir=args.data_dir, capture_dir=args.capture_dir, key=args.key)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        hubs = ", ".join(f"{h.name} ({h.partitions} partitions)" for h in config.hubs)
        print(f"emulator: listening on {args.host}:{emu.port}; health on {emu.health_port}; hubs: {hubs}", flush=True)
        print(f"emulator: connection string: {emu.connection_string()}", flush=True)
        try:
            await stop.wait()
        finally:
            await emu.stop()

    asyncio.run(main())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulator", description="An Event Hubs emulator the stock SDK talks to.")
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"emulator: error: {exc}")
        return 2
