"""Dead letters: events a consumer could not process, kept with the reason, never silently dropped.

The Functions host checkpoints a batch even when the function raises, so a consumer cannot leave
a bad event "in the hub" to look at later: it records it here (raw body base64, the error with
the field it names, where the event sat in the hub) and moves on with the good ones.

A record's id is derived from the hub, the consumer, where the event sat and a hash of its body,
and the blob path from the event's enqueued time, so a redelivered bad event lands on the same
record instead of adding a second one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.events import deterministic_id

log = logging.getLogger(__name__)

DEAD_LETTER_STORAGE_SETTING = "DEADLETTER_STORAGE"


class DeadLetter(BaseModel):
    """One undeliverable event and why. Serialized as the blob's JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dead_letter_id: str
    reason: str
    # What kind of fault (shared.adapters.processing): DECODE, LATE, ID_CONFLICT, OUTPUT_TOO_LARGE,
    # HANDLER_ERROR (a bug: `stack` holds the traceback).
    reason_code: str = ""
    error_type: str
    field: str | None = None
    hub: str
    consumer: str
    event_id: str | None = None
    partition_id: str | None = None
    partition_key: str | None = None
    sequence_number: int | None = None
    offset: str | None = None
    enqueued_time: int | None = Field(default=None, description="Unix ms UTC, as the hub stamped it")
    body_sha256: str
    body_b64: str
    # The event's application properties as it arrived (marketflow.type, traceparent, ...).
    properties: dict[str, str] = Field(default_factory=dict)
    stack: str | None = None
    first_seen: int = Field(description="Unix ms UTC when this consumer first dead-lettered it")

    @classmethod
    def create(cls, *, body: bytes, error: BaseException, hub: str, consumer: str,
               event_id: str | None = None, partition_id: str | None = None,
               partition_key: str | None = None, sequence_number: int | None = None,
               offset: str | int | None = None, enqueued_time: int | None = None,
               now_ms: int | None = None, reason_code: str = "", stack: str | None = None,
               properties: dict[str, str] | None = None) -> DeadLetter:
        """Build the record of `body` failing with `error`; the id is stable across redeliveries."""
        digest = hashlib.sha256(body).hexdigest()
        dl_id = deterministic_id("dead-letter", hub, consumer, partition_key or "", sequence_number
                                 if sequence_number is not None else "", digest)
        field = getattr(error, "field", None)
        return cls(
            dead_letter_id=dl_id, reason=(str(error) or type(error).__name__)[:4096], reason_code=reason_code,
            stack=stack[-16_384:] if stack else None, properties=dict(properties or {}),
            error_type=type(error).__name__, field=field if isinstance(field, str) else None,
            hub=hub, consumer=consumer, event_id=event_id, partition_id=partition_id,
            partition_key=partition_key, sequence_number=sequence_number,
            offset=None if offset is None else str(offset), enqueued_time=enqueued_time,
            body_sha256=digest, body_b64=base64.b64encode(body).decode("ascii"),
            first_seen=int(time.time() * 1000) if now_ms is None else now_ms)

    @property
    def body(self) -> bytes:
        return base64.b64decode(self.body_b64)

    def blob_name(self) -> str:
        """`<hub>/<yyyy>/<mm>/<dd>/<id>.json`, dated by enqueued time so redeliveries share a path."""
        ms = self.enqueued_time if self.enqueued_time is not None else self.first_seen
        day = datetime.fromtimestamp(ms / 1000, tz=UTC)
        return f"{self.hub}/{day:%Y}/{day:%m}/{day:%d}/{self.dead_letter_id}.json"


class DeadLetterSink(Protocol):
    """Stores dead letters. Raises when it cannot: the batch is then retried, nothing is lost."""

    def put(self, record: DeadLetter) -> None: ...


class InMemoryDeadLetterSink:
    """Keeps records by blob name, like the blob sink: a redelivery does not add a record."""

    def __init__(self) -> None:
        self.records: dict[str, DeadLetter] = {}
        self.puts = 0

    def put(self, record: DeadLetter) -> None:
        self.puts += 1
        self.records.setdefault(record.blob_name(), record)

    def all(self) -> list[DeadLetter]:
        return list(self.records.values())
