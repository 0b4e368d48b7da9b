"""Against the real Azure Storage API (Azurite on loopback): dead letters and Event Hubs checkpoints.

`make test` starts Azurite (scripts/test.sh); these tests are deselected, loudly, only when it runs
without the emulator.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from shared import topology
from shared.adapters.azure import BlobDeadLetterSink
from shared.adapters.processing import BatchProcessor, Delivery, StepResult
from shared.adapters.publisher import InMemoryPublisher
from shared.events import Kline, encode
from shared.market import Bar

pytestmark = pytest.mark.azurite
DEV = {"DEADLETTER_STORAGE": "UseDevelopmentStorage=true"}
# Azurite's documented, public development account (the vendored storage client inside the
# checkpoint store does not understand the UseDevelopmentStorage shortcut).
AZURITE_BLOB = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
                "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")


def _kline(t: int) -> Kline:
    return Bar("BTCUSDT", "1m", t, t + 59_999, 100.0, 101.0, 99.0, 100.5, 1.0).to_kline()


def test_bad_events_land_in_blob_storage_once_with_the_reason() -> None:
    from azure.storage.blob import BlobServiceClient

    sink = BlobDeadLetterSink.from_settings(environ=DEV)
    publisher = InMemoryPublisher()
    proc = BatchProcessor(hub=topology.MARKET_DATA.name, consumer="signals", event_type=Kline,
                          step=lambda k: StepResult(), publish_to=topology.SIGNALS.name, publisher=publisher,
                          dead_letters=sink)
    seq = uuid.uuid4().int % 10**12  # a fresh event: the record id is derived from where it sat in the hub
    good = encode(_kline(60_000))
    bad = json.loads(encode(_kline(120_000)))
    bad["low"] = -1.0
    bad["symbol"] = "BTCUSDT"
    bad["interval"] = "1m"
    bad_body = json.dumps({**bad, "quote_volume": 0.0, "trades": 0}).encode()
    batch = [Delivery(body=good, partition_key="BTCUSDT", sequence_number=1, offset="1"),
             Delivery(body=bad_body, partition_key="BTCUSDT", sequence_number=seq, offset="2",
                      enqueued_time=1_700_000_000_000)]
    outcome = proc.process(batch)
    assert outcome.ok == 1 and len(outcome.dead_letters) == 1
    proc.process(batch)  # redelivered: the same blob, not a second record

    service = BlobServiceClient.from_connection_string(DEV["DEADLETTER_STORAGE"])
    container = service.get_container_client(topology.DEAD_LETTER_CONTAINER)
    mine = []
    for blob in container.list_blobs(name_starts_with=f"{topology.MARKET_DATA.name}/"):
        record = json.loads(container.download_blob(blob.name).readall())
        if record.get("sequence_number") == seq:
            mine.append(record)
    assert len(mine) == 1
    (record,) = mine
    assert record["field"] == "low" and "greater than 0" in record["reason"]
    assert record["hub"] == "market-data" and record["offset"] == "2"


def test_executor_checkpoints_round_trip_through_the_blob_checkpoint_store() -> None:
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
    from azure.storage.blob import BlobServiceClient

    container = f"checkpoints-{uuid.uuid4().hex[:8]}"
    BlobServiceClient.from_connection_string("UseDevelopmentStorage=true").create_container(container)

    async def run() -> list[dict]:
        store = BlobCheckpointStore.from_connection_string(AZURITE_BLOB, container)
        async with store:
            checkpoint = {"fully_qualified_namespace": "mf.servicebus.windows.net",
                          "eventhub_name": topology.ORDERS.name, "consumer_group": "executor",
                          "partition_id": "0", "offset": "4096", "sequence_number": 42}
            await store.update_checkpoint(checkpoint)
            return await store.list_checkpoints("mf.servicebus.windows.net", topology.ORDERS.name, "executor")

    (saved,) = asyncio.run(run())
    assert saved["partition_id"] == "0" and saved["sequence_number"] == 42 and str(saved["offset"]) == "4096"
