"""Process entry point (`python -m aks_executor`): consume `orders` and `market-data` as consumer
group `executor`, one active replica at a time.

Checkpoints go to Blob storage (`topology.CHECKPOINT_CONTAINER`) only after a batch's outputs
were published, so a crash replays the batch (at least once) and the executor's idempotent
intents and deterministic client order ids absorb the redelivery. Settings: `settings.py`;
secrets (connection strings, the venue's keys) come from the environment or Key Vault and are
scrubbed from every log line.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping
from typing import Any

from shared import telemetry, topology
from shared.adapters.azure import BlobDeadLetterSink, EventHubPublisher
from shared.adapters.azure.blob_documents import STATE_STORAGE_SETTING
from shared.adapters.azure.keyvault import SecretResolver
from shared.adapters.azure.settings import ConfigurationError, default_credential, resolve_connection
from shared.adapters.azure.table_intent_store import INTENT_STORAGE_SETTING
from shared.adapters.lease import Lease, LeaseKeeper
from shared.adapters.ops_http import HttpServer, build_app
from shared.adapters.stores import documents_from_settings
from shared.adapters.trading_state import DocumentStateStore

from . import logs
from .app import ExecutorRuntime, Source
from .metrics import ExecutorMetrics
from .service import CONSUMER, ExecutorService
from .settings import ServiceSettings

log = logging.getLogger("marketflow.executor")
CHECKPOINT_SETTING = "CHECKPOINT_STORAGE"
CONNECTION_SETTINGS = (topology.EVENTHUB_CONNECTION_SETTING, CHECKPOINT_SETTING, "DEADLETTER_STORAGE",
                       INTENT_STORAGE_SETTING, STATE_STORAGE_SETTING, telemetry.APPINSIGHTS_SETTING)
_KEY_PARTS = re.compile(r"(?:SharedAccessKey|AccountKey|SharedAccessSignature|InstrumentationKey)=([^;]+)",
                        re.IGNORECASE)


def register_connection_secrets(resolver: SecretResolver, environ: Mapping[str, str]) -> None:
    """Connection strings are secrets too: the log formatter scrubs them and the keys in them."""
    for name in CONNECTION_SETTINGS:
        for key in (name, "AzureWebJobs" + name):
            value = environ.get(key, "").strip()
            if value:
                resolver.remember(value)
                for part in _KEY_PARTS.findall(value):
                    resolver.remember(part)


def _checkpoint_store(container: str) -> Any:
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

    conn = resolve_connection(CHECKPOINT_SETTING, "blobServiceUri")
    if conn.connection_string is not None:
        return BlobCheckpointStore.from_connection_string(conn.connection_string, container)
    assert conn.endpoint is not None
    return BlobCheckpointStore(conn.endpoint, container, credential=default_credential(conn.client_id))


async def ensure_checkpoint_container(container: str) -> None:
    """Create the checkpoint container if it is missing (Azurite, a fresh account); the IaC makes
    it in Azure, where the identity may lack the right to create it (then this only warns)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob.aio import ContainerClient

    conn = resolve_connection(CHECKPOINT_SETTING, "blobServiceUri")
    if conn.connection_string is not None:
        client = ContainerClient.from_connection_string(conn.connection_string, container)
    else:
        assert conn.endpoint is not None
        from shared.adapters.azure.settings import aio_credential

        client = ContainerClient(conn.endpoint, container, credential=aio_credential(conn.client_id))
    async with client:
        try:
            await client.create_container()
            log.info("created checkpoint container %s", container)
        except ResourceExistsError:
            pass
        except Exception as exc:
            log.warning("checkpoint container %s could not be created (%s)", container, type(exc).__name__)


def consumer(hub: str, owner_level: int, load_balancing_s: float = 2.0,
             container: str = topology.CHECKPOINT_CONTAINER) -> Any:
    """An `EventHubConsumerClient` for `hub` as consumer group `executor`, checkpointing to Blob.

    Greedy load balancing: the one active replica claims every partition in its first cycle.
    `load_balancing_s` bounds the failover: a dead holder's partition ownership expires after six
    intervals. (`owner_level` is passed to `receive_batch` by the runtime.)"""
    from azure.eventhub.aio import EventHubConsumerClient

    del owner_level
    store = _checkpoint_store(container)
    conn = resolve_connection(topology.EVENTHUB_CONNECTION_SETTING, "fullyQualifiedNamespace")
    group = topology.consumer_group(hub, CONSUMER)
    balancing: dict[str, Any] = {"load_balancing_interval": load_balancing_s, "load_balancing_strategy": "greedy",
                                 "checkpoint_store": store}
    if conn.connection_string is not None:
        return EventHubConsumerClient.from_connection_string(
            conn.connection_string, consumer_group=group, eventhub_name=hub, **balancing)
    assert conn.endpoint is not None
    return EventHubConsumerClient(fully_qualified_namespace=conn.endpoint, eventhub_name=hub, consumer_group=group,
                                  credential=default_credential(conn.client_id), **balancing)


def build_lease(settings: ServiceSettings) -> Lease:
    holder = os.environ.get("HOSTNAME") or f"pid-{os.getpid()}"  # the pod name in Kubernetes
    if settings.lease == "file":
        from shared.adapters.local.file_lease import LEASE_FILE, FileLease

        return FileLease(settings.state_dir / LEASE_FILE, holder=holder)
    from shared.adapters.azure.blob_lease import BlobLease

    return BlobLease.from_settings(name=settings.lease_name, duration_s=settings.lease_duration_s, holder=holder)


def build_store(settings: ServiceSettings) -> Any:
    """The durable intent store: Azure Table storage (`INTENT_STORAGE`, shared by the replicas, so
    the standby that takes the lease over finds every intent and the book), SQLite (WAL) under the
    state directory (one replica with a persistent volume; `MARKETFLOW_INTENT_SYNC` its durability),
    or memory (tests only)."""
    if settings.intent_store == "table":
        from shared.adapters.azure.table_intent_store import TableIntentStore

        return TableIntentStore.from_settings(table=settings.intent_table, account=settings.account)
    if settings.intent_store == "memory":
        from shared.execution import MemoryIntentStore

        return MemoryIntentStore()
    from shared.adapters.local.intent_store import SqliteIntentStore

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return SqliteIntentStore(settings.state_dir, synchronous=settings.intent_sync)


def bridge(loop: asyncio.AbstractEventLoop) -> Any:
    """Run a coroutine on `loop` from a batch's worker thread and wait for its result."""

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    return run


async def connect_binance(service: ExecutorService, resolver: SecretResolver, metrics: ExecutorMetrics) -> Any:
    """Connect the Binance venue (clock sync, exchangeInfo), hand its filters to the risk engine
    (and every refresh after), and make the service trade on it."""
    from shared.adapters.binance.venue import BinanceVenue, risk_hook

    from .metrics import venue_hooks
    from .secrets import binance_credentials

    hooks = venue_hooks(metrics)
    to_risk = risk_hook(service.engine)

    def on_error(err: Any) -> None:
        hooks["on_error"](err)
        to_risk(err)

    venue = await BinanceVenue.connect(credentials=binance_credentials(resolver, os.environ), on_error=on_error,
                                       on_exchange=hooks["on_exchange"])
    service.engine.set_filters(await venue.exchange_info.filters())
    venue.on_filters = service.engine.set_filters  # the venue re-reads them when stale or after -1013
    service.use_venue(venue, bridge(asyncio.get_running_loop()))
    log.info("binance venue connected", extra={"base_url": venue.rest.base_url, "offset_ms": venue.rest.offset_ms})
    return venue


def build_runtime(settings: ServiceSettings, resolver: SecretResolver) -> ExecutorRuntime:
    publisher = EventHubPublisher.from_settings()
    metrics = ExecutorMetrics()
    store = build_store(settings)
    remote_store = settings.intent_store == "table"
    documents = documents_from_settings(os.environ)  # STATE_STORAGE: the shared trading state
    if documents is None:
        log.warning("no STATE_STORAGE: the trading state is this process's own; a halt from "
                    "`marketflow trading-state` or the trading_state endpoint does not reach it")
    service = ExecutorService(publisher=publisher, dead_letters=BlobDeadLetterSink.from_settings(),
                              cash=settings.cash, commission=settings.commission, metrics=metrics, store=store,
                              restore=not remote_store,
                              state_store=None if documents is None else DocumentStateStore(documents),
                              clock=(lambda intent: intent.event_time) if settings.clock == "event" else None)
    if settings.venue == "binance":
        binance_credentials_check(resolver)
    lease = build_lease(settings)
    renew = settings.lease_duration_s / 3 if lease.duration_s else 5.0
    keeper = LeaseKeeper(lease, renew_every_s=renew, retry_every_s=settings.lease_retry_s)
    venue: list[Any] = []

    async def take_over() -> None:
        if remote_store:
            await store.ensure_table()
            service.run_on(bridge(asyncio.get_running_loop()))  # the store's session lives on this loop
        if settings.venue == "binance" and not venue:
            venue.append(await connect_binance(service, resolver, metrics))
        result = await service.recover()
        log.info("account taken over: %d reports, %d differences resolved toward the venue",
                 len(result.reports), len(result.differences))

    async def close() -> None:
        publisher.close()
        for v in venue:
            await v.close()
        await store.close()
        closer = getattr(lease, "close", None)
        if closer is not None:
            await closer()

    runtime = ExecutorRuntime(
        sources=[Source(topology.ORDERS.name, service.orders), Source(topology.MARKET_DATA.name, service.market)],
        keeper=keeper, consumers=functools.partial(consumer, load_balancing_s=settings.load_balancing_s,
                                                      container=settings.checkpoint_container),
        metrics=metrics, grace_s=settings.grace_s, on_close=close, on_acquired=take_over,
        readiness_extra={"not_banned": service.not_banned, "time_synced": service.time_synced},
        on_batch_done=lambda _hub, _outcome: service.export_state(), starting_position=settings.starting_position)
    runtime.http = HttpServer(build_app(metrics.registry, runtime.readiness, on_scrape=service.export_state),
                              settings.http_host, settings.http_port)
    return runtime


def binance_credentials_check(resolver: SecretResolver) -> None:
    """Fail at start (exit 2, one line) when the keys are missing, not when the lease is won."""
    from .secrets import binance_credentials

    binance_credentials(resolver, os.environ)


async def serve(runtime: ExecutorRuntime, settings: ServiceSettings) -> int:
    await ensure_checkpoint_container(settings.checkpoint_container)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime._request_stop, f"{signal.Signals(sig).name} received")
    return await runtime.run()


def main() -> int:
    resolver = SecretResolver()
    register_connection_secrets(resolver, os.environ)
    try:
        settings = ServiceSettings.from_env()
    except ConfigurationError as exc:
        logs.setup(secrets=resolver.known_values)
        log.error("configuration: %s", exc)
        return 2
    logs.setup(settings.log_level, secrets=resolver.known_values)
    telemetry.setup(service_name="marketflow-executor")
    try:
        runtime = build_runtime(settings, resolver)
    except ConfigurationError as exc:
        log.error("configuration: %s", exc)
        return 2
    log.info("executor starting", extra={"venue": settings.venue, "lease": settings.lease,
                                         "hubs": [topology.ORDERS.name, topology.MARKET_DATA.name],
                                         "consumer_group": CONSUMER, "http_port": settings.http_port})
    # Everything built so far (modules, SDK clients, filters) lives as long as the process: frozen
    # out of the cyclic GC, a collection on the order path scans only what orders allocate.
    gc.collect()
    gc.freeze()
    return asyncio.run(serve(runtime, settings))


if __name__ == "__main__":
    sys.exit(main())
