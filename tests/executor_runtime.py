"""Test helpers for the executor service: a consumer that plays `EventHubConsumerClient`.

No Event Hubs runs here. `StrictConsumer.receive_batch` accepts exactly the arguments the real
`azure.eventhub.aio.EventHubConsumerClient.receive_batch` accepts (checked against its
signature on every call), calls the same callbacks in the same order (partition initialize,
event batches, partition close on close) with a partition context whose `update_checkpoint`
records what was checkpointed, and hands out real `EventData`.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient

from shared.events import Event, encode

_REAL = inspect.signature(EventHubConsumerClient.receive_batch)


class Context:
    def __init__(self, hub: str, partition_id: str, checkpoints: list[tuple[str, str, bytes]]) -> None:
        self.eventhub_name = hub
        self.partition_id = partition_id
        self.consumer_group = "executor"
        self._checkpoints = checkpoints

    async def update_checkpoint(self, event: EventData | None = None, **kwargs: Any) -> None:
        assert event is not None
        self._checkpoints.append((self.eventhub_name, self.partition_id, b"".join(event.body)))


class StrictConsumer:
    def __init__(self, hub: str, owner_level: int) -> None:
        self.hub = hub
        self.owner_level = owner_level
        self.queue: asyncio.Queue[list[EventData]] = asyncio.Queue()
        self.checkpoints: list[tuple[str, str, bytes]] = []
        self.received_kwargs: dict[str, Any] = {}
        self.closed = asyncio.Event()
        self.error: Exception | None = None  # set to have on_error called once

    async def __aenter__(self) -> StrictConsumer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def send(self, *events: Event) -> None:
        self.queue.put_nowait([EventData(encode(e)) for e in events])

    async def receive_batch(self, on_event_batch: Any, **kwargs: Any) -> None:
        _REAL.bind(self, on_event_batch, **kwargs)  # TypeError on anything the SDK would refuse
        self.received_kwargs = kwargs
        ctx = Context(self.hub, "0", self.checkpoints)
        if kwargs.get("on_partition_initialize"):
            await kwargs["on_partition_initialize"](ctx)
        try:
            while not self.closed.is_set():
                if self.error is not None and kwargs.get("on_error"):
                    error, self.error = self.error, None
                    await kwargs["on_error"](ctx, error)
                get = asyncio.create_task(self.queue.get())
                closed = asyncio.create_task(self.closed.wait())
                done, pending = await asyncio.wait([get, closed], timeout=0.05,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if get in done:
                    await on_event_batch(ctx, get.result())
        finally:
            if kwargs.get("on_partition_close"):
                await kwargs["on_partition_close"](ctx, "shutdown")

    async def close(self) -> None:
        self.closed.set()


class Consumers:
    """The runtime's consumer factory, keeping every client it made by hub."""

    def __init__(self) -> None:
        self.made: dict[str, StrictConsumer] = {}

    def __call__(self, hub: str, owner_level: int) -> StrictConsumer:
        client = self.made[hub] = StrictConsumer(hub, owner_level)
        return client
