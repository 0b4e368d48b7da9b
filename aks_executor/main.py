"""Process entry point: consume `orders` and `market-data` as consumer group `executor`.

Checkpoints go to Blob storage (`topology.CHECKPOINT_CONTAINER`) only after a batch's outputs
were published, so a crash replays the batch (at least once) and the executor's idempotent
intents and deterministic client order ids absorb the redelivery.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from typing import Any

from shared import telemetry, topology
from shared.adapters.azure import BlobDeadLetterSink, EventHubPublisher
from shared.adapters.azure.settings import default_credential, resolve_connection
from shared.adapters.processing import BatchProcessor, Delivery

from .service import CONSUMER, ExecutorService

log = logging.getLogger("marketflow.executor")
CHECKPOINT_SETTING = "CHECKPOINT_STORAGE"


def _delivery(event: Any, partition_id: str) -> Delivery:
    enqueued = event.enqueued_time
    return Delivery(body=event.body_as_str(encoding="utf-8").encode("utf-8"), partition_id=partition_id,
                    partition_key=event.partition_key, sequence_number=event.sequence_number,
                    offset=str(event.offset), enqueued_time=int(enqueued.timestamp() * 1000) if enqueued else None)


def _consumer(hub: str, checkpoint_store: Any) -> Any:
    from azure.eventhub.aio import EventHubConsumerClient

    conn = resolve_connection(topology.EVENTHUB_CONNECTION_SETTING, "fullyQualifiedNamespace")
    group = topology.consumer_group(hub, CONSUMER)
    if conn.connection_string is not None:
        return EventHubConsumerClient.from_connection_string(
            conn.connection_string, consumer_group=group, eventhub_name=hub, checkpoint_store=checkpoint_store)
    assert conn.endpoint is not None
    return EventHubConsumerClient(fully_qualified_namespace=conn.endpoint, eventhub_name=hub, consumer_group=group,
                                  credential=default_credential(conn.client_id), checkpoint_store=checkpoint_store)


def _checkpoint_store() -> Any:
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

    conn = resolve_connection(CHECKPOINT_SETTING, "blobServiceUri")
    if conn.connection_string is not None:
        return BlobCheckpointStore.from_connection_string(conn.connection_string, topology.CHECKPOINT_CONTAINER)
    assert conn.endpoint is not None
    return BlobCheckpointStore(conn.endpoint, topology.CHECKPOINT_CONTAINER,
                               credential=default_credential(conn.client_id))


async def _consume(hub: str, processor: BatchProcessor[Any], lock: asyncio.Lock) -> None:
    client = _consumer(hub, _checkpoint_store())

    async def on_batch(context: Any, events: list[Any]) -> None:
        if not events:
            return
        deliveries = [_delivery(e, context.partition_id) for e in events]
        async with lock:  # one writer of orders: both consumers share the executor's state
            await asyncio.to_thread(processor.process, deliveries)
        await context.update_checkpoint(events[-1])

    async with client:
        await client.receive_batch(on_batch, max_batch_size=100, max_wait_time=1.0, starting_position="@latest")


async def serve(service: ExecutorService) -> None:
    lock = asyncio.Lock()
    await asyncio.gather(_consume(topology.ORDERS.name, service.orders, lock),
                         _consume(topology.MARKET_DATA.name, service.market, lock))


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    telemetry.setup(service_name="marketflow-executor")
    service = ExecutorService(publisher=EventHubPublisher.from_settings(),
                              dead_letters=BlobDeadLetterSink.from_settings(),
                              cash=float(os.environ.get("MARKETFLOW_ACCOUNT_CASH", "10000")),
                              commission=float(os.environ.get("MARKETFLOW_PAPER_COMMISSION", "0.001")))
    log.info("executor starting: venue=paper hubs=%s,%s group=%s", topology.ORDERS.name,
             topology.MARKET_DATA.name, CONSUMER)
    # Everything built so far (modules, SDK clients, filters) lives as long as the process: frozen
    # out of the cyclic GC, a collection on the order path scans only what orders allocate.
    gc.collect()
    gc.freeze()
    asyncio.run(serve(service))


if __name__ == "__main__":
    main()
