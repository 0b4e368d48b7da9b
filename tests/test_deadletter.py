"""Dead-letter records and sinks: the reason is kept, a redelivery never duplicates a record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from shared import topology
from shared.adapters import BlobDeadLetterSink, DeadLetter, InMemoryDeadLetterSink
from shared.adapters.deadletter import DEAD_LETTER_STORAGE_SETTING
from shared.events import MalformedEvent

ENQUEUED = 1_577_923_200_000  # 2020-01-02T00:00:00Z
BODY = b'{"schema_version":1,"type":"kline"}'


def record(sequence: int = 5, now: int = 1_700_000_000_000, body: bytes = BODY,
           enqueued: int | None = ENQUEUED) -> DeadLetter:
    return DeadLetter.create(body=body, error=MalformedEvent("kline: field 'close': missing", field="close"),
                             hub="market-data", consumer="signals", partition_id="2",
                             partition_key="BTCUSDT", sequence_number=sequence, offset=4096,
                             enqueued_time=enqueued, now_ms=now)


def test_record_keeps_reason_field_position_and_raw_body() -> None:
    r = record()
    assert (r.error_type, r.field, r.reason) == ("MalformedEvent", "close", "kline: field 'close': missing")
    assert (r.hub, r.consumer, r.partition_id, r.partition_key, r.sequence_number, r.offset) == (
        "market-data", "signals", "2", "BTCUSDT", 5, "4096")
    assert r.body == BODY
    assert r.first_seen == 1_700_000_000_000
    assert DeadLetter.model_validate_json(r.model_dump_json()) == r


def test_id_and_blob_name_are_stable_across_redeliveries() -> None:
    first, again = record(now=1), record(now=999_999_999)
    assert first.dead_letter_id == again.dead_letter_id
    assert first.blob_name() == again.blob_name() == f"market-data/2020/01/02/{first.dead_letter_id}.json"
    assert record(sequence=6).dead_letter_id != first.dead_letter_id
    assert record(body=BODY + b" ").dead_letter_id != first.dead_letter_id


def test_blob_name_falls_back_to_first_seen_without_enqueued_time() -> None:
    r = record(enqueued=None, now=ENQUEUED + 86_400_000)
    assert r.blob_name().startswith("market-data/2020/01/03/")


def test_errors_without_a_field() -> None:
    r = DeadLetter.create(body=b"", error=RuntimeError(), hub="signals", consumer="risk")
    assert (r.error_type, r.field, r.reason) == ("RuntimeError", None, "RuntimeError")


def test_in_memory_sink_keeps_the_first_record() -> None:
    sink = InMemoryDeadLetterSink()
    sink.put(record(now=1))
    sink.put(record(now=2))
    assert sink.puts == 2
    [kept] = sink.all()
    assert kept.first_seen == 1


class FakeContainer:
    """The ContainerClient calls the sink makes, with Azure's own exception types."""

    def __init__(self, exists: bool = True) -> None:
        self.exists = exists
        self.blobs: dict[str, bytes] = {}
        self.kwargs: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.fail_with: Exception | None = None

    def upload_blob(self, name: str, data: bytes, overwrite: bool = False, **kwargs: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if not self.exists:
            raise ResourceNotFoundError("The specified container does not exist.")
        if name in self.blobs and not overwrite:
            raise ResourceExistsError("The specified blob already exists.")
        self.blobs[name] = data
        self.kwargs[name] = kwargs

    def create_container(self) -> None:
        self.creates += 1
        self.exists = True


def test_blob_sink_writes_json_under_the_hub_and_date() -> None:
    container = FakeContainer()
    sink = BlobDeadLetterSink(container)
    r = record()
    sink.put(r)
    assert list(container.blobs) == [r.blob_name()]
    assert DeadLetter.model_validate(json.loads(container.blobs[r.blob_name()])) == r
    assert container.kwargs[r.blob_name()]["content_settings"].content_type == "application/json"


def test_blob_sink_redelivery_neither_duplicates_nor_rewrites() -> None:
    container = FakeContainer()
    sink = BlobDeadLetterSink(container)
    sink.put(record(now=1))
    sink.put(record(now=2))
    [data] = container.blobs.values()
    assert json.loads(data)["first_seen"] == 1


def test_blob_sink_creates_a_missing_container_once() -> None:
    container = FakeContainer(exists=False)
    sink = BlobDeadLetterSink(container)
    sink.put(record())
    sink.put(record(sequence=9))
    assert container.creates == 1
    assert len(container.blobs) == 2


def test_blob_sink_failures_propagate() -> None:
    container = FakeContainer()
    container.fail_with = HttpResponseError("503 server busy")
    with pytest.raises(HttpResponseError):
        BlobDeadLetterSink(container).put(record())


def test_from_settings_targets_the_topology_container() -> None:
    sink = BlobDeadLetterSink.from_settings(environ={DEAD_LETTER_STORAGE_SETTING: "UseDevelopmentStorage=true"})
    container = sink._container
    assert container.container_name == topology.DEAD_LETTER_CONTAINER
    assert container.url.startswith("http://127.0.0.1:10000/devstoreaccount1/")


def test_from_settings_identity_based() -> None:
    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise AssertionError("no token is needed to construct a client")

    sink = BlobDeadLetterSink.from_settings(
        environ={"DEADLETTER_STORAGE__blobServiceUri": "https://mfprod.blob.core.windows.net"},
        credential=Credential())
    assert sink._container.url == f"https://mfprod.blob.core.windows.net/{topology.DEAD_LETTER_CONTAINER}"
