"""The per-event consume loop every trigger uses: decode -> handle -> dead-letter -> publish.

Why it is shaped like this:

* The Functions host checkpoints a batch even when the function raises, so errors are caught per
  event: a bad event (undecodable, or its handler raised) becomes a dead letter with the reason,
  and the good events of the same batch still go through.
* A failure to dead-letter or to publish is not the event's fault: it propagates, the trigger's
  retry policy re-runs the batch before any checkpoint, and deterministic event ids let
  downstream consumers drop what was already sent (at-least-once).
* Handlers are stateful and deduplicate redeliveries (a bar or signal seen once is ignored the
  second time). So the outputs computed for an event are kept until they are published: a retry
  after a failed publish re-sends the same outputs instead of asking the handler again (which
  would now answer "duplicate" and lose them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry.trace import SpanKind, Tracer

from shared import telemetry, topology
from shared.events import Event, RiskDecision, decode_as

from .deadletter import DeadLetter, DeadLetterSink
from .publisher import Publisher

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

DEFAULT_MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One received event as the transport handed it over: raw body and where it sat in the hub."""

    body: bytes
    partition_id: str | None = None
    partition_key: str | None = None
    sequence_number: int | None = None
    offset: str | None = None
    enqueued_time: int | None = None  # Unix ms UTC
    # Application properties (marketflow.type, traceparent, replay ...); in a cardinality=many
    # trigger they come from the trigger metadata's PropertiesArray, one entry per event.
    properties: Mapping[str, Any] = field(default_factory=dict)


PROP_REPLAY = "replay"


def is_replay(delivery: Delivery) -> bool:
    """A replayed event (property `replay` set true by the replaying producer): risk checks it in
    event time; a live one is checked in wall-clock time."""
    value = delivery.properties.get(PROP_REPLAY)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a handler made of one event: events to publish, and events only to observe (logs,
    metrics), such as risk decisions, which have no hub of their own."""

    publish: tuple[Event, ...] = ()
    observe: tuple[Event, ...] = ()


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did; returned for tests and logs."""

    received: int = 0
    ok: int = 0
    duplicates: int = 0
    published: list[Event] = field(default_factory=list)
    observed: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class BatchProcessor(Generic[E]):
    """Consumes batches of one hub for one consumer with one handler step.

    Batches are processed one at a time per processor (a lock): the handlers keep per-symbol
    state that is not thread-safe, and the Python worker may run invocations on several threads.
    """

    def __init__(self, *, hub: str, consumer: str, event_type: type[E],
                 step: Callable[[E], StepResult] | None = None,
                 publish_to: str | None, publisher: Publisher, dead_letters: DeadLetterSink,
                 metrics: telemetry.Metrics | None = None, tracer: Tracer | None = None,
                 max_pending: int = DEFAULT_MAX_PENDING,
                 after_batch: Callable[[telemetry.Metrics], None] | None = None,
                 step_with_delivery: Callable[[E, Delivery], StepResult] | None = None,
                 begin: Callable[[], None] | None = None, commit: Callable[[], None] | None = None,
                 cache_outputs: bool = True) -> None:
        """`step(event)` or `step_with_delivery(event, delivery)` (for steps that read the
        event's properties) handles one event.

        `begin()` runs before a batch's first step and `commit()` after its outputs are
        published (a store-backed handler loads and saves its state there; either raising means
        the batch is retried). `cache_outputs=False` is for such handlers: a retry re-runs the
        steps on the freshly loaded state instead of reusing outputs kept from the failed try.
        `after_batch(metrics)` runs after each batch is recorded: for counts a step keeps
        outside its outputs (a risk engine's approvals)."""
        if (step is None) == (step_with_delivery is None):
            raise TypeError("give exactly one of step and step_with_delivery")
        topology.consumer_group(hub, consumer)  # the pair must exist in the topology
        if publish_to is not None:
            topology.hub(publish_to)
        self.hub = hub
        self.consumer = consumer
        self.event_type = event_type
        self.publish_to = publish_to
        self._step = step
        self._step_with_delivery = step_with_delivery
        self._begin = begin
        self._commit = commit
        self._cache_outputs = cache_outputs
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._tracer = tracer
        self._max_pending = max_pending
        self._after_batch = after_batch
        # input event id -> outputs computed but not yet published (see module docstring)
        self._pending: dict[str, StepResult] = {}
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def process(self, deliveries: Sequence[Delivery]) -> BatchOutcome:
        """Process one batch. Raises only when dead-lettering or publishing failed (retry the batch)."""
        tracer = self._tracer or telemetry.tracer()
        with self._lock, tracer.start_as_current_span(
                f"{self.consumer} process", kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "eventhubs", "messaging.destination.name": self.hub,
                            "messaging.consumer.group.name": self.consumer,
                            "messaging.batch.message_count": len(deliveries)}) as span:
            outcome = self._process(deliveries)
            span.set_attribute("marketflow.published", len(outcome.published))
            span.set_attribute("marketflow.dead_letters", len(outcome.dead_letters))
            return outcome

    def _process(self, deliveries: Sequence[Delivery]) -> BatchOutcome:
        outcome = BatchOutcome(received=len(deliveries))
        if self._begin is not None:
            self._begin()  # raises: nothing was done, the batch is retried
        done: list[str] = []
        seen: set[str] = set()
        for delivery in deliveries:
            event_id: str | None = None
            try:
                event = decode_as(delivery.body, self.event_type)
                event_id = event.event_id
                if event_id in seen:
                    outcome.duplicates += 1
                    continue
                seen.add(event_id)
                result = self._pending.get(event_id) if self._cache_outputs else None
                if result is None:
                    if self._step is not None:
                        result = self._step(event)
                    else:
                        assert self._step_with_delivery is not None
                        result = self._step_with_delivery(event, delivery)
                    if self._cache_outputs:
                        self._remember(event_id, result)
            except Exception as exc:  # per event: one bad event must not sink the batch
                outcome.dead_letters.append(self._dead_letter(delivery, exc, event_id))
                continue
            done.append(event_id)
            outcome.ok += 1
            outcome.published.extend(result.publish)
            outcome.observed.extend(result.observe)

        for record in outcome.dead_letters:
            self._dead_letters.put(record)  # raises: the batch is retried, the record rewritten
        if outcome.published:
            if self.publish_to is None:
                raise RuntimeError(f"{self.consumer} produced events but publishes to no hub")
            self._publisher.publish(self.publish_to, outcome.published)  # raises: batch retried
        if self._commit is not None:
            self._commit()  # after publishing: see the module docstring; raises: batch retried
        for event_id in done:
            self._pending.pop(event_id, None)
        self._record(outcome)
        return outcome

    def _remember(self, event_id: str, result: StepResult) -> None:
        if len(self._pending) >= self._max_pending:
            # Bounded: only outputs of batches whose retries never came back here pile up.
            self._pending.pop(next(iter(self._pending)))
        self._pending[event_id] = result

    def _dead_letter(self, delivery: Delivery, exc: Exception, event_id: str | None) -> DeadLetter:
        record = DeadLetter.create(
            body=delivery.body, error=exc, hub=self.hub, consumer=self.consumer, event_id=event_id,
            partition_id=delivery.partition_id, partition_key=delivery.partition_key,
            sequence_number=delivery.sequence_number, offset=delivery.offset,
            enqueued_time=delivery.enqueued_time)
        log.warning("dead-lettering event from hub %s (consumer %s, partition %s, sequence %s): %s "
                    "field=%s record=%s", self.hub, self.consumer, delivery.partition_id,
                    delivery.sequence_number, record.error_type, record.field, record.dead_letter_id)
        return record

    def _record(self, outcome: BatchOutcome) -> None:
        for event in outcome.observed:
            if isinstance(event, RiskDecision):
                log.info("risk decision %s on %s %s: %s %s", event.event_id, event.symbol,
                         event.subject_id, event.status.value, ",".join(event.reasons) or "-")
        metrics = self._metrics or telemetry.metrics()
        base = {"hub": self.hub, "consumer": self.consumer}
        counts: list[tuple[str, int, telemetry.Attributes | None]] = [
            (telemetry.EVENTS, outcome.ok, {**base, "outcome": "ok"}),
            (telemetry.EVENTS, outcome.duplicates, {**base, "outcome": "duplicate"}),
            (telemetry.EVENTS, len(outcome.dead_letters), {**base, "outcome": "dead_letter"}),
        ]
        counts += [(telemetry.DEAD_LETTERS, 1, {**base, "error_type": r.error_type})
                   for r in outcome.dead_letters]
        metrics.add_many(counts)
        metrics.record_outputs([*outcome.published, *outcome.observed])
        if self._after_batch is not None:
            self._after_batch(metrics)
