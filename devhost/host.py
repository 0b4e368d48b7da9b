"""The host loop: one Event Hubs consumer per trigger, batches in, invocations, checkpoints; and
the HTTP functions on loopback (devhost.http).

Each trigger's hub is consumed with the SDK's `EventHubConsumerClient` (async), its consumer group
and a `BlobCheckpointStore` in `AzureWebJobsStorage` (container `azure-webjobs-eventhub`), so
several hosts share the partitions as Functions instances do. Each partition's batches are handled
one at a time, in order; the function runs on a worker thread. A batch is checkpointed every
`batchCheckpointFrequency` batches once its invocation is done (succeeded, or failed with the retry
policy exhausted), never before. Each trigger's status (GET /admin/host/status) includes the
latency from each event's enqueued time at the hub to the start of its invocation (p50, p99).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bindings import EventHubTrigger, HttpFunction
from .hostjson import EventHubsOptions
from .invoke import Invocation, invoke
from .metadata import PartitionInfo, from_event_data, to_event, to_events

log = logging.getLogger("devhost")

STORAGE_SETTING = "AzureWebJobsStorage"
CHECKPOINT_CONTAINER = "azure-webjobs-eventhub"
LATENCIES_KEPT = 100_000  # per trigger, the most recent events' enqueue-to-invocation latencies


class HostError(RuntimeError):
    """A setting or file the host needs is missing or unusable (names settings, never values)."""


def load_local_settings(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Put `Values` of local.settings.json into the environment, as `func start` does; a variable
    already set in the environment wins. Returns the names it set."""
    env = os.environ if environ is None else environ
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HostError(f"{path}: cannot read local settings: {exc}") from exc
    values = doc.get("Values") if isinstance(doc, dict) else None
    if not isinstance(values, dict):
        raise HostError(f"{path}: no \"Values\" object")
    set_names = []
    for name, value in values.items():
        if name not in env and value is not None:
            env[str(name)] = str(value)
            set_names.append(str(name))
    return set_names


def connection_string(setting: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for name in (setting, "AzureWebJobs" + setting):
        value = env.get(name, "").strip()
        if value:
            return value
    raise HostError(f"no connection string in setting {setting} (the local host needs a connection string, "
                    f"e.g. the emulator's)")


def namespace_of(conn: str) -> str:
    for part in conn.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "endpoint":
            return value.strip().removeprefix("sb://").rstrip("/")
    return ""


@dataclass
class TriggerStats:
    batches: int = 0
    events: int = 0
    failures: int = 0
    retries: int = 0
    checkpoints: int = 0
    by_partition: dict[str, int] = field(default_factory=dict)
    # ms from each event's enqueued time at the hub to the start of its function's invocation
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def latency(self) -> dict[str, float | int]:
        """p50 / p99 / max of `latency_ms` (nearest rank), and how many events they cover."""
        ordered = sorted(self.latency_ms)
        if not ordered:
            return {"n": 0}

        def rank(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))], 1)
        return {"n": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1], 1)}


class FunctionsHost:
    """Runs every Event Hub trigger of an app until `stop()`."""

    def __init__(self, triggers: Sequence[EventHubTrigger], options: EventHubsOptions,
                 environ: Mapping[str, str] | None = None, load_balancing_interval: float = 10.0,
                 on_batch: Callable[[str, str, int, Invocation], None] | None = None,
                 http: Sequence[HttpFunction] = (), http_host: str = "127.0.0.1", http_port: int = 7071) -> None:
        self.triggers = list(triggers)
        self.http = list(http)
        self.http_host = http_host
        self.http_port = http_port
        self.options = options
        self._env = os.environ if environ is None else environ
        self._lb_interval = load_balancing_interval
        self._on_batch = on_batch
        self._stop = threading.Event()
        self._clients: list[Any] = []
        self.stats: dict[str, TriggerStats] = {t.function: TriggerStats() for t in self.triggers}

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        if not self.triggers and not self.http:
            raise HostError("the app has no Event Hub or HTTP triggers")
        storage = connection_string(STORAGE_SETTING, self._env) if self.triggers else ""
        from .http import serve

        runner = await serve(self.http, self.http_host, self.http_port, self.status)
        if self.triggers:
            await self._ensure_container(storage)
        tasks = [asyncio.create_task(self._consume(t, storage), name=t.function) for t in self.triggers]
        stopper = asyncio.create_task(asyncio.to_thread(self._stop.wait))
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        self._stop.set()
        for client in self._clients:
            await client.close()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await stopper
        await runner.cleanup()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    def status(self) -> dict[str, Any]:
        return {"functions": {name: {"batches": s.batches, "events": s.events, "failures": s.failures,
                                     "retries": s.retries, "checkpoints": s.checkpoints,
                                     "latency_ms": s.latency()}
                              for name, s in self.stats.items()}}

    @staticmethod
    async def _ensure_container(storage: str) -> None:
        """The checkpoint container, created on first start as the Functions host does."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob.aio import BlobServiceClient

        async with BlobServiceClient.from_connection_string(storage) as service:
            with contextlib.suppress(ResourceExistsError):
                await service.create_container(CHECKPOINT_CONTAINER)

    async def _consume(self, trigger: EventHubTrigger, storage: str) -> None:
        from azure.eventhub.aio import EventHubConsumerClient
        from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

        conn = connection_string(trigger.connection, self._env)
        store = BlobCheckpointStore.from_connection_string(storage, CHECKPOINT_CONTAINER)
        client = EventHubConsumerClient.from_connection_string(
            conn, consumer_group=trigger.consumer_group, eventhub_name=trigger.hub, checkpoint_store=store,
            load_balancing_interval=self._lb_interval)
        self._clients.append(client)
        namespace = namespace_of(conn)
        stats = self.stats[trigger.function]
        unsaved: dict[str, int] = {}

        async def on_batch(context: Any, events: list[Any]) -> None:
            if not events or self._stop.is_set():
                return
            started = time.time()
            for e in events:
                if e.enqueued_time is not None:
                    stats.latency_ms.append((started - e.enqueued_time.timestamp()) * 1000)
            partition = PartitionInfo(namespace, trigger.hub, trigger.consumer_group, context.partition_id)
            received = [from_event_data(e) for e in events]
            payload: Any = (to_events(received, partition) if trigger.many
                            else [to_event(r, partition) for r in received])
            if trigger.many:
                outcome = await asyncio.to_thread(invoke, trigger, payload, self._stop)
            else:  # cardinality ONE: one invocation per event, in order
                outcome = Invocation(0, None, True)
                for event in payload:
                    one = await asyncio.to_thread(invoke, trigger, event, self._stop)
                    outcome = Invocation(outcome.attempts + one.attempts, one.error or outcome.error,
                                         outcome.checkpoint and one.checkpoint)
                    if not one.checkpoint:
                        break
            stats.batches += 1
            stats.events += len(events)
            stats.retries += max(0, outcome.attempts - (1 if trigger.many else len(events)))
            stats.failures += outcome.error is not None
            stats.by_partition[context.partition_id] = stats.by_partition.get(context.partition_id, 0) + len(events)
            if outcome.checkpoint:
                pending = unsaved.get(context.partition_id, 0) + 1
                if pending >= self.options.batch_checkpoint_frequency:
                    await context.update_checkpoint(events[-1])
                    stats.checkpoints += 1
                    pending = 0
                unsaved[context.partition_id] = pending
            if self._on_batch is not None:
                self._on_batch(trigger.function, context.partition_id, len(events), outcome)

        log.info("function %s: consuming hub %s as consumer group %s", trigger.function, trigger.hub,
                 trigger.consumer_group)
        async with client:
            await client.receive_batch(on_batch, max_batch_size=self.options.max_event_batch_size,
                                       max_wait_time=1.0, prefetch=self.options.prefetch_count,
                                       starting_position=self.options.starting_position())
