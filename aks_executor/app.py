"""The executor process's life: probes up, lease, consumers, and a bounded, orderly shutdown.

1. The HTTP server starts first (`/healthz` answers at once; `/readyz` is 503 until ready).
2. The replica stands by until it holds the lease (`LeaseKeeper`); only then does it consume.
3. Both consumers (`orders`, `market-data`) receive with `owner_level` = the lease's epoch, so a
   newer holder's receivers displace this replica's at the service even if it missed losing the
   lease; a displaced or lease-losing replica stops at once (exit 1, Kubernetes restarts it as a
   standby).
4. SIGTERM (or SIGINT) drains: no new batch starts, the batch in hand finishes and is
   checkpointed, the consumers close, the lease is released (a standby takes over within its
   retry interval) and the process exits 0, all within `grace_s`; past that it exits 1.

Batches of both hubs run one at a time (one writer of the executor's state), in a worker thread
so the probes answer while a batch runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.lease import LeaseKeeper
from shared.adapters.ops_http import HttpServer, Readiness
from shared.adapters.processing import BatchOutcome, BatchProcessor, Delivery
from shared.events import DecisionStatus, ExecutionReport, RiskDecision

from .metrics import ExecutorMetrics

log = logging.getLogger("marketflow.executor")
# What a standby cannot pass until it holds the lease (it consumes only then): /readyz?standby=ok
# ignores these, so both replicas are Ready for Kubernetes while one trades.
ACTIVE_ONLY = ("consumer_connected", "lease_held")

# Event Hubs consumer: (hub, owner_level) -> an EventHubConsumerClient-like object (async context
# manager with receive_batch and close).
ConsumerFactory = Callable[[str, int], Any]


@dataclass
class Source:
    """One hub the executor consumes and the processor its batches go to."""

    hub: str
    processor: BatchProcessor[Any]
    partitions: set[str] = field(default_factory=set)


def to_delivery(event: Any, partition_id: str) -> Delivery:
    """An azure-eventhub `EventData` as the batch loop's transport-neutral `Delivery`, with its
    application properties (keys arrive as bytes; values are kept as they are: the trace
    context getter and the property readers take bytes)."""
    enqueued = event.enqueued_time
    props = {k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k): v
             for k, v in (event.properties or {}).items()}
    return Delivery(body=event.body_as_str(encoding="utf-8").encode("utf-8"), partition_id=partition_id,
                    partition_key=event.partition_key, sequence_number=event.sequence_number,
                    offset=str(event.offset), enqueued_time=int(enqueued.timestamp() * 1000) if enqueued else None,
                    properties=props)


def is_displacement(error: BaseException) -> bool:
    """Did the service close our receiver because one with a higher owner level opened?
    (AMQP `amqp:link:stolen`: the SDK raises a ConnectionLostError naming the condition and Event
    Hubs' "new receiver with higher epoch ... is created" text.)"""
    text = str(error).lower()
    return "amqp:link:stolen" in text or "higher epoch" in text


class ExecutorRuntime:
    def __init__(self, *, sources: Sequence[Source], keeper: LeaseKeeper, consumers: ConsumerFactory,
                 metrics: ExecutorMetrics, readiness_extra: dict[str, Callable[[], bool]] | None = None,
                 http: HttpServer | None = None, grace_s: float = 25.0,
                 on_batch_done: Callable[[str, BatchOutcome], None] | None = None,
                 on_close: Callable[[], Awaitable[None]] | None = None,
                 on_acquired: Callable[[], Awaitable[Any]] | None = None,
                 max_batch_size: int = 100, max_wait_time: float = 1.0,
                 starting_position: str = "@latest") -> None:
        self.sources = list(sources)
        self._starting_position = starting_position  # where a partition with no checkpoint starts
        self.keeper = keeper
        self.metrics = metrics
        self.http = http
        self.grace_s = grace_s
        self._consumers = consumers
        self._on_batch_done = on_batch_done
        self._on_close = on_close
        self._on_acquired = on_acquired
        self._max_batch_size = max_batch_size
        self._max_wait_time = max_wait_time
        self._lock = asyncio.Lock()
        self._clients: list[Any] = []
        self.stop = asyncio.Event()         # set by SIGTERM / SIGINT
        self.displaced = asyncio.Event()    # a receiver was displaced by a higher owner level
        self.draining = False
        self.stop_reason = ""
        checks: dict[str, Callable[[], bool]] = {
            "consumer_connected": lambda: bool(self.sources) and all(s.partitions for s in self.sources),
            "time_synced": lambda: True,
            "not_banned": lambda: True,
            "lease_held": lambda: self.keeper.held,
        }
        checks.update(readiness_extra or {})
        self.readiness = Readiness(active_only=ACTIVE_ONLY, **checks)

    # -- consumers ----------------------------------------------------------------------------
    def _callbacks(self, source: Source) -> dict[str, Any]:
        async def on_event_batch(context: Any, events: list[Any]) -> None:
            if not events or self.draining:
                return  # not checkpointed: the next holder receives them again
            if not self.keeper.held:
                self._request_stop("the lease is no longer held")
                return
            async with self._lock:
                if self.draining:
                    return
                deliveries = [to_delivery(e, context.partition_id) for e in events]
                outcome = await asyncio.to_thread(source.processor.process, deliveries)
                self._record(source.hub, outcome)
                await context.update_checkpoint(events[-1])

        async def on_partition_initialize(context: Any) -> None:
            source.partitions.add(context.partition_id)
            self.metrics.partitions.labels(source.hub).set(len(source.partitions))
            log.info("consuming %s partition %s (owner level %s)", source.hub, context.partition_id,
                     self.keeper.epoch)

        async def on_partition_close(context: Any, reason: Any) -> None:
            source.partitions.discard(context.partition_id)
            self.metrics.partitions.labels(source.hub).set(len(source.partitions))
            log.info("stopped consuming %s partition %s: %s", source.hub, context.partition_id, reason)

        async def on_error(context: Any, error: Exception) -> None:
            partition = getattr(context, "partition_id", None) if context is not None else None
            if is_displacement(error):
                log.error("%s partition %s: displaced by a consumer with a higher owner level; stopping",
                          source.hub, partition)
                self.displaced.set()
                self._request_stop("displaced by a higher owner level")
                return
            log.warning("%s partition %s: %s: %s", source.hub, partition, type(error).__name__, error)

        return {"on_event_batch": on_event_batch, "on_partition_initialize": on_partition_initialize,
                "on_partition_close": on_partition_close, "on_error": on_error}

    def _record(self, hub: str, outcome: BatchOutcome) -> None:
        m = self.metrics
        m.events.labels(hub, "ok").inc(outcome.ok)
        m.events.labels(hub, "duplicate").inc(outcome.duplicates)
        m.events.labels(hub, "dead_letter").inc(len(outcome.dead_letters))
        for event in outcome.published:
            if isinstance(event, ExecutionReport):
                m.orders.labels(event.status.value).inc()
        for event in outcome.observed:
            if isinstance(event, RiskDecision) and event.status is DecisionStatus.REJECTED:
                m.orders.labels("RISK_REJECTED").inc()
        if self._on_batch_done is not None:
            self._on_batch_done(hub, outcome)

    async def _consume(self, source: Source, owner_level: int) -> None:
        client = self._consumers(source.hub, owner_level)
        self._clients.append(client)
        cb = self._callbacks(source)
        async with client:
            await client.receive_batch(cb["on_event_batch"], max_batch_size=self._max_batch_size,
                                       max_wait_time=self._max_wait_time, owner_level=owner_level,
                                       starting_position=self._starting_position,
                                       on_partition_initialize=cb["on_partition_initialize"],
                                       on_partition_close=cb["on_partition_close"], on_error=cb["on_error"])

    def _request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
        self.stop.set()

    # -- life cycle ---------------------------------------------------------------------------
    async def run(self) -> int:
        """Serve until stopped; the exit status (0 after a requested stop, 1 after losing the
        lease, being displaced or a shutdown that overran the grace period)."""
        if self.http is not None:
            await self.http.start()
        tasks: list[asyncio.Task[Any]] = []
        try:
            if not await self.keeper.acquire(self.stop):
                return await self._shutdown(tasks, 0)
            epoch = self.keeper.epoch
            assert epoch is not None
            self.metrics.lease_held.set(1)
            self.metrics.lease_epoch.set(epoch)
            if self._on_acquired is not None:
                # Take over the account (book from the store, reconcile with the venue) before
                # consuming anything; a failure here gives the lease back.
                try:
                    await self._on_acquired()
                except Exception as exc:
                    log.error("taking over the account failed: %s: %s", type(exc).__name__, exc)
                    self._request_stop("taking over the account failed")
                    return await self._shutdown(tasks, 1)
            keep = asyncio.create_task(self.keeper.keep(self.stop), name="lease-keeper")
            lost = asyncio.create_task(self.keeper.lost.wait(), name="lease-lost")
            stopped = asyncio.create_task(self.stop.wait(), name="stop")
            consumers = [asyncio.create_task(self._consume(s, epoch), name=f"consume-{s.hub}")
                         for s in self.sources]
            tasks = [keep, lost, stopped, *consumers]
            done, _ = await asyncio.wait([lost, stopped, *consumers], return_when=asyncio.FIRST_COMPLETED)
            status = 0
            if lost in done or self.keeper.lost.is_set():
                self._request_stop("the lease was lost")
                status = 1
            elif self.displaced.is_set():
                status = 1
            for task in consumers:
                if task in done and task.exception() is not None:
                    log.error("consumer %s failed: %r", task.get_name(), task.exception())
                    self._request_stop(f"consumer {task.get_name()} failed")
                    status = 1
            return await self._shutdown(tasks, status)
        except BaseException:
            await self._shutdown(tasks, 1)
            raise

    async def _shutdown(self, tasks: list[asyncio.Task[Any]], status: int) -> int:
        started = time.monotonic()
        log.info("shutting down (%s): draining", self.stop_reason or "stopped")
        try:
            await asyncio.wait_for(self._drain(tasks), self.grace_s)
        except TimeoutError:
            log.error("shutdown overran the %.1f s grace period", self.grace_s)
            status = 1
        self.metrics.lease_held.set(0)
        log.info("stopped after %.2f s (exit %d)", time.monotonic() - started, status)
        return status

    async def _drain(self, tasks: list[asyncio.Task[Any]]) -> None:
        self.draining = True
        async with self._lock:  # the batch in hand finishes and is checkpointed first
            pass
        # Closed together: each SDK client stops its partition receivers and releases ownership.
        await asyncio.gather(*(client.close() for client in self._clients), return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.keeper.release()
        if self._on_close is not None:
            await self._on_close()
        if self.http is not None:
            await self.http.stop()
