"""Hub heads and sends from synchronous code, over the SDK's async clients on one loop thread.

The async clients answer a management read in milliseconds, and a settle check asks every
partition of every hub, so they are queried together (`asyncio.gather`) on a private event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class Hubs:
    """Producer clients for `partitions` (hub -> partition count) of one namespace."""

    def __init__(self, connection_string: str, partitions: Mapping[str, int]) -> None:
        self._partitions = dict(partitions)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hubs", daemon=True)
        self._thread.start()
        self._clients: dict[str, Any] = self._run(self._open(connection_string))

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open(self, conn: str) -> dict[str, Any]:
        from azure.eventhub.aio import EventHubProducerClient

        return {hub: EventHubProducerClient.from_connection_string(conn, eventhub_name=hub)
                for hub in self._partitions}

    def heads(self, only: Mapping[str, Sequence[str]] | None = None) -> dict[str, dict[str, int]]:
        """hub -> partition -> last enqueued sequence number (-1: empty); every partition, or
        those of `only` (hub -> partition ids)."""
        async def read() -> dict[str, dict[str, int]]:
            keys = ([(hub, str(p)) for hub, n in self._partitions.items() for p in range(n)] if only is None
                    else [(hub, str(p)) for hub, pids in only.items() for p in pids])
            props = await asyncio.gather(*(self._clients[h].get_partition_properties(p) for h, p in keys))
            out: dict[str, dict[str, int]] = {hub: {} for hub in self._partitions}
            for (hub, pid), prop in zip(keys, props, strict=True):
                out[hub][pid] = int(prop["last_enqueued_sequence_number"])
            return out
        return self._run(read())

    def send(self, hub: str, partition_key: str, events: Sequence[Any]) -> None:
        """One batch of `EventData` with `partition_key` (they must fit one batch)."""
        async def go() -> None:
            client = self._clients[hub]
            batch = await client.create_batch(partition_key=partition_key)
            for e in events:
                batch.add(e)
            await client.send_batch(batch)
        self._run(go())

    def close(self) -> None:
        async def shut() -> None:
            for client in self._clients.values():
                await client.close()
        try:
            self._run(shut(), timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
