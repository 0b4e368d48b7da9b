"""Process entry point: build the sinks from the settings, run until SIGTERM/SIGINT, print totals.

On a signal the streams are closed, the batcher writes what it holds (retrying for up to 25 s,
inside Kubernetes' default 30 s grace period) and the producer is closed; the one line of totals
goes to stdout. The exit status is 0 unless items could not be written.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

from .ingestor import Ingestor
from .settings import IngestSettings, SettingsError, Target
from .sinks import (
    DeadLetterMalformedSink,
    DirMalformedSink,
    DirSink,
    EventSink,
    MalformedSink,
    PublisherSink,
)

log = logging.getLogger("marketflow.ingestor")


def build_sink(target: Target) -> EventSink:
    if target.kind == "dir":
        assert target.path is not None
        try:
            return DirSink(target.path)
        except OSError as exc:
            raise SettingsError(f"sink folder {target.path}: {exc.strerror or exc}") from None
    import azure.eventhub  # noqa: F401  (now, not at the first publish, while the streams' messages queue)

    from shared.adapters.azure import EventHubPublisher

    return PublisherSink(EventHubPublisher.from_settings())


def build_malformed_sink(target: Target) -> MalformedSink:
    if target.kind == "dir":
        assert target.path is not None
        try:
            return DirMalformedSink(target.path)
        except OSError as exc:
            raise SettingsError(f"dead-letter folder {target.path}: {exc.strerror or exc}") from None
    from shared.adapters.azure import BlobDeadLetterSink

    return DeadLetterMalformedSink(BlobDeadLetterSink.from_settings())


async def serve(ingestor: Ingestor, *, http_port: int | None = None, install_signals: bool = True,
                on_started: Callable[[Ingestor], None] | None = None) -> int:
    """Run `ingestor` (with the ops endpoints on `http_port`) until it is stopped; items not written."""
    from shared.adapters.ops_http import HttpServer, Readiness, build_app

    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, ingestor.stop.set)
    ops = None
    if http_port is not None:
        readiness = Readiness(streams_connected=ingestor.streams_connected, not_stopping=ingestor.not_stopping)
        ops = HttpServer(build_app(ingestor.registry, readiness), port=http_port)
        await ops.start()
    if on_started is not None:
        on_started(ingestor)
    try:
        return await ingestor.run()
    finally:
        if ops is not None:
            await ops.stop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


def run(settings: IngestSettings) -> int:
    """Build, run until a signal, print the totals line; 0 when everything received was written."""
    sink = build_sink(settings.sink)
    malformed = build_malformed_sink(settings.deadletter_target())

    async def go() -> tuple[Ingestor, int]:
        ingestor = Ingestor(settings, sink, malformed)
        return ingestor, await serve(ingestor, http_port=settings.http_port)

    ingestor, unwritten = asyncio.run(go())
    print(ingestor.summary(), flush=True)
    if unwritten:
        print(f"ingest: {unwritten} received items could not be written before shutdown", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    try:
        settings = IngestSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"aks_ingestor: error: {exc}", file=sys.stderr)
        return 2
    return run(settings)
