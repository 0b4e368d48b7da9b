"""The per-event consume loop every trigger uses: filter -> decode -> deduplicate -> handle ->
dead-letter -> publish -> commit.

Why it is shaped like this:

* The Functions host checkpoints a batch even when the function raises, so what is an event's
  own fault is caught per event and dead-lettered (with its original body and properties) and
  the batch goes on. Three kinds, told apart by what was raised (`shared.pipeline.errors`):
  the event's fault (undecodable, unknown schema, `LATE`, `ID_CONFLICT`, `OUTPUT_TOO_LARGE`):
  a dead letter with the reason; a transient infrastructure failure (publishing, a state store,
  the dead-letter store itself): it propagates, and the trigger's retry policy re-runs the batch
  before any checkpoint; any other exception from a handler is a bug: a `HANDLER_ERROR` dead
  letter with the stack, counted in `marketflow.handler_errors` for an alert.
* `market-data` carries several event types and kline intervals. A consumer skips what is not
  for it on the `marketflow.type` / `marketflow.interval` application properties, before
  decoding anything; skips are counted (`outcome=skipped`), never dead-lettered.
* Deduplication checks content: each partition keeps a bounded window of event id -> body
  digest. The same id with the same bytes is a redelivery (counted, skipped); the same id with
  other bytes is an `ID_CONFLICT` dead letter, never silently dropped. The window only takes in
  a batch's ids once the batch has been published and committed, so a retried batch is handled
  again rather than taken for its own duplicate.
* Handlers are stateful, so the outputs computed for an event are kept until they are published:
  a retry after a failed publish re-sends the same outputs instead of asking the handler again
  (which would now answer "duplicate" and lose them). Handlers whose state lives in a store
  (`cache_outputs=False`) reload it in `begin()` and simply run again.
* Order per batch: dead letters, then publish, then `commit()` (a store-backed handler saves its
  state, compare-and-set). Publishing first means a crash between the two republishes on the
  next try (the same deterministic ids: downstream deduplicates) instead of saving a state whose
  outputs were never sent.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Tracer

from shared import telemetry, topology
from shared.events import Event, EventDecodeError, Kline, RiskDecision, decode, decode_as, encode
from shared.pipeline.errors import EventFault, IdConflict, InfrastructureError, OutputTooLarge

from .azure.settings import ConfigurationError
from .deadletter import DeadLetter, DeadLetterSink
from .documents import DocumentConflict
from .partition_state import PartitionStates
from .publisher import PROP_EVENT_TYPE, PROP_INTERVAL, Publisher, PublishError
from .tracing import incoming, properties_of

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)

DEFAULT_MAX_PENDING = 10_000
# Ids remembered per partition for content-checked deduplication (a few hours of one-minute
# bars for hundreds of symbols; far beyond what a redelivery reaches back).
DEFAULT_DEDUP_WINDOW = 20_000
# Of those, the newest saved with a partition's state: redeliveries of older events are skipped
# by their sequence number anyway, this catches ID_CONFLICTs right after a takeover.
SAVED_DEDUP_IDS = 1_000
# Event Hubs Standard/Premium accept events up to 1 MiB including properties and AMQP framing;
# a body above this can never be published, so the input is dead-lettered (OUTPUT_TOO_LARGE).
DEFAULT_MAX_OUTPUT_BYTES = 1_000_000
# Raised by a step, these are not the event's fault: the batch is retried.
TRANSIENT: tuple[type[BaseException], ...] = (InfrastructureError, ConfigurationError, PublishError,
                                              DocumentConflict, ConnectionError, TimeoutError)

DECODE = "DECODE"
HANDLER_ERROR = "HANDLER_ERROR"


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


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def replay_of(delivery: Delivery) -> str | None:
    """The `replay` property of a replayed event (what replayed it: `up`, `capture`, `hub:src`,
    `binance`, or `true`), None for a live one. Empty, `0`, `false` and `no` mean live."""
    value = delivery.properties.get(PROP_REPLAY)
    if value is None or value is False:
        return None
    text = (_text(value) or "").strip()
    return None if text.lower() in ("", "0", "false", "no") else text


def is_replay(delivery: Delivery) -> bool:
    """A replayed event (property `replay` naming its source, set by the replaying producer and
    carried by every event derived from it): risk checks it in event time; a live one is checked
    in wall-clock time."""
    return replay_of(delivery) is not None


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a handler made of one event: events to publish, and events only to observe (logs,
    metrics), such as risk decisions, which have no hub of their own."""

    publish: tuple[Event, ...] = ()
    observe: tuple[Event, ...] = ()
    # Output event id -> the span context it continues, when not the handled event's own span
    # (the executor's fill of an order, reported while handling a later kline, continues the
    # order's trace).
    trace_parents: Mapping[str, SpanContext] = field(default_factory=dict)


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did; returned for tests and logs."""

    received: int = 0
    ok: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # skip reason (type:trade, interval:5m) -> count
    handler_errors: int = 0
    published: list[Event] = field(default_factory=list)
    observed: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class DedupWindow:
    """The last `capacity` event ids of one partition with a digest of their bodies."""

    __slots__ = ("capacity", "ids")

    def __init__(self, capacity: int = DEFAULT_DEDUP_WINDOW, items: Sequence[Sequence[str]] = ()) -> None:
        self.capacity = capacity
        self.ids: OrderedDict[str, str] = OrderedDict((str(i), str(d)) for i, d in items)

    def get(self, event_id: str) -> str | None:
        return self.ids.get(event_id)

    def add(self, event_id: str, digest: str) -> None:
        ids = self.ids
        ids[event_id] = digest
        ids.move_to_end(event_id)
        while len(ids) > self.capacity:
            ids.popitem(last=False)

    def snapshot(self, newest: int | None = None) -> list[list[str]]:
        items = [[i, d] for i, d in self.ids.items()]
        return items if newest is None else items[-newest:]


def body_digest(body: bytes) -> str:
    """What "same content" means: the same bytes (producers write canonical JSON, so the same
    event always has the same body)."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


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
                 cache_outputs: bool = True, skip_other_types: bool = False, interval: str | None = None,
                 dedup_window: int = DEFAULT_DEDUP_WINDOW,
                 max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
                 partition_states: PartitionStates | None = None, name: str | None = None) -> None:
        """`step(event)` or `step_with_delivery(event, delivery)` (for steps that read the
        event's properties) handles one event.

        `begin()` runs before a batch's first step and `commit()` after its outputs are
        published (a store-backed handler loads and saves its state there; either raising means
        the batch is retried). `cache_outputs=False` is for such handlers: a retry re-runs the
        steps on the freshly loaded state instead of reusing outputs kept from the failed try.
        `skip_other_types` (hubs that carry several types: market-data) skips, uncounted as
        errors, every event whose type is not `event_type`; `interval` skips klines of other
        intervals. `partition_states` saves the handlers' state of each partition after each
        batch and restores it when another instance processed the partition since
        (`shared.adapters.partition_state`). `after_batch(metrics)` runs after each batch is
        recorded: for counts a step keeps outside its outputs (a risk engine's approvals).
        `name` (default: the consumer) is the `function` attribute of the batch-duration and
        event-age histograms (two Functions can share a consumer group on different hubs)."""
        if (step is None) == (step_with_delivery is None):
            raise TypeError("give exactly one of step and step_with_delivery")
        topology.consumer_group(hub, consumer)  # the pair must exist in the topology
        if publish_to is not None:
            topology.hub(publish_to)
        self.hub = hub
        self.consumer = consumer
        self.name = name or consumer
        self.event_type = event_type
        self.type_name: str = event_type.model_fields["type"].default
        self.publish_to = publish_to
        self._step = step
        self._step_with_delivery = step_with_delivery
        self._begin = begin
        self._commit = commit
        self._cache_outputs = cache_outputs
        self._skip_other_types = skip_other_types
        self.interval = interval
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._tracer = tracer
        self._max_pending = max_pending
        self._max_output_bytes = max_output_bytes
        self._after_batch = after_batch
        self._dedup_capacity = dedup_window
        self.partition_states = partition_states
        self._last_seq: dict[str, int | None] = {}  # partition -> last sequence number handled
        # partition id -> its dedup window (None: deliveries that name no partition)
        self.windows: dict[str | None, DedupWindow] = {}
        # input event id -> outputs computed but not yet published (see module docstring)
        self._pending: dict[str, StepResult] = {}
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def window(self, partition_id: str | None) -> DedupWindow:
        win = self.windows.get(partition_id)
        if win is None:
            win = self.windows[partition_id] = DedupWindow(self._dedup_capacity)
        return win

    def process(self, deliveries: Sequence[Delivery]) -> BatchOutcome:
        """Process one batch. Raises only for a transient failure (retry the batch)."""
        tracer = self._tracer or telemetry.tracer()
        with self._lock, tracer.start_as_current_span(
                f"{self.consumer} process", kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "eventhubs", "messaging.destination.name": self.hub,
                            "messaging.consumer.group.name": self.consumer,
                            "messaging.batch.message_count": len(deliveries)}) as span:
            started = time.perf_counter()
            ages: list[float] = []
            attributes = {"hub": self.hub, "consumer": self.consumer, "function": self.name,
                          "partition": (deliveries[0].partition_id if deliveries else None) or "none"}
            outcome_name = "retry"
            try:
                outcome = self._process(deliveries, tracer, ages)
                outcome_name = "ok"
            finally:
                metrics = self._metrics or telemetry.metrics()
                metrics.record_batch(time.perf_counter() - started, {**attributes, "outcome": outcome_name})
                if outcome_name == "ok":
                    metrics.record_event_ages(ages, attributes)
            span.set_attribute("marketflow.published", len(outcome.published))
            span.set_attribute("marketflow.dead_letters", len(outcome.dead_letters))
            return outcome

    def _skip_reason(self, properties: Mapping[str, Any]) -> str | None:
        """Why a delivery is not for this consumer, from its properties alone (no decoding)."""
        if not self._skip_other_types:
            return None
        etype = _text(properties.get(PROP_EVENT_TYPE))
        if etype is not None and etype != self.type_name:
            return f"type:{etype}"
        if self.interval is not None and etype == "kline":
            interval = _text(properties.get(PROP_INTERVAL))
            if interval is not None and interval != self.interval:
                return f"interval:{interval}"
        return None

    def _decode(self, body: bytes) -> E | str:
        """The event, or the skip reason of a decodable event that is not for this consumer."""
        if not self._skip_other_types:
            return decode_as(body, self.event_type)
        event = decode(body)
        if not isinstance(event, self.event_type):
            return f"type:{getattr(event, 'type', type(event).__name__)}"
        if self.interval is not None and isinstance(event, Kline) and event.interval != self.interval:
            return f"interval:{event.interval}"
        return event

    def _process(self, deliveries: Sequence[Delivery], tracer: Tracer, ages: list[float]) -> BatchOutcome:
        """`ages` receives the age in seconds (enqueued to handled) of each event handled."""
        outcome = BatchOutcome(received=len(deliveries))
        if self._begin is not None:
            self._begin()  # raises: nothing was done, the batch is retried
        # A Functions batch comes from one partition; its state is restored first if needed.
        pid = deliveries[0].partition_id if deliveries else None
        states = self.partition_states if pid is not None else None
        last_seq: int | None = None
        if states is not None and pid is not None:
            restored = states.sync(pid)
            if restored is not None:
                self.windows[pid] = DedupWindow(self._dedup_capacity, restored.dedup)
                self._last_seq[pid] = restored.sequence_number
                self._pending.clear()  # outputs of a state we no longer hold
            last_seq = self._last_seq.get(pid)
        done: list[str] = []
        staged: dict[tuple[str | None, str], str] = {}  # (partition, id) -> digest, this batch
        # each published output's properties: the trace context it continues, its input's `replay` mark
        out_props: list[dict[str, str]] = []
        batch_span = trace.get_current_span()
        for delivery in deliveries:
            skip = self._skip_reason(delivery.properties)
            if skip is not None:
                outcome.skipped[skip] = outcome.skipped.get(skip, 0) + 1
                continue
            seq = delivery.sequence_number
            if last_seq is not None and seq is not None and seq <= last_seq and delivery.partition_id == pid:
                outcome.duplicates += 1  # handled and published by whoever saved the state
                continue
            with self._event_span(delivery, batch_span, tracer, ages) as span:
                try:
                    decoded = self._decode(delivery.body)
                except EventDecodeError as exc:
                    outcome.dead_letters.append(self._dead_letter(delivery, exc, None, DECODE))
                    continue
                if isinstance(decoded, str):
                    outcome.skipped[decoded] = outcome.skipped.get(decoded, 0) + 1
                    continue
                event = decoded
                event_id = event.event_id
                digest = body_digest(delivery.body)
                key = (delivery.partition_id, event_id)
                result = self._pending.get(event_id) if self._cache_outputs else None
                if result is None:
                    known = staged.get(key) or self.window(delivery.partition_id).get(event_id)
                    if known == digest:
                        outcome.duplicates += 1
                        continue
                    if known is not None:
                        conflict = IdConflict(f"event id {event_id} was already seen with different content")
                        outcome.dead_letters.append(self._dead_letter(delivery, conflict, event_id, conflict.reason))
                        continue
                    staged[key] = digest
                    try:
                        result = self._run_step(event, delivery)
                    except EventFault as exc:
                        outcome.dead_letters.append(self._dead_letter(delivery, exc, event_id, exc.reason))
                        continue
                    except TRANSIENT:
                        raise
                    except Exception as exc:  # a bug in a handler: keep the event, count it, go on
                        outcome.handler_errors += 1
                        outcome.dead_letters.append(self._dead_letter(
                            delivery, exc, event_id, HANDLER_ERROR, stack=traceback.format_exc()))
                        continue
                    too_large = self._too_large(result)
                    if too_large is not None:
                        outcome.dead_letters.append(self._dead_letter(delivery, too_large, event_id, too_large.reason))
                        continue
                    if self._cache_outputs:
                        self._remember(event_id, result)
                else:
                    staged[key] = digest
                done.append(event_id)
                outcome.ok += 1
                outcome.published.extend(result.publish)
                out_props.extend(self._output_properties(result, delivery, span))
                outcome.observed.extend(result.observe)

        for record in outcome.dead_letters:
            self._dead_letters.put(record)  # raises: the batch is retried, the record rewritten
        if outcome.published:
            if self.publish_to is None:
                raise RuntimeError(f"{self.consumer} produced events but publishes to no hub")
            self._publish(outcome.published, out_props)  # raises: batch retried
        if self._commit is not None:
            self._commit()  # after publishing: see the module docstring; raises: batch retried
        for (partition_id, event_id), digest in staged.items():
            self.window(partition_id).add(event_id, digest)
        if states is not None and pid is not None:
            seqs = [d.sequence_number for d in deliveries if d.sequence_number is not None]
            if last_seq is not None:
                seqs.append(last_seq)
            new_last = max(seqs) if seqs else None
            states.save(pid, new_last, self.window(pid).snapshot(SAVED_DEDUP_IDS))  # raises: retried
            self._last_seq[pid] = new_last
        for event_id in done:
            self._pending.pop(event_id, None)
        self._record(outcome)
        return outcome

    def _publish(self, events: list[Event], props: list[dict[str, str]]) -> None:
        """Publish the outputs in order, each with its properties: the trace context of the span
        it came from and, for a replayed input, its `replay` mark (so the next stage checks it in
        event time too). Runs of equal properties (the outputs of one input) are one publish."""
        assert self.publish_to is not None
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or props[i] != props[start]:
                self._publisher.publish(self.publish_to, events[start:i], properties=props[start] or None)
                start = i

    @contextmanager
    def _event_span(self, delivery: Delivery, batch_span: Span, tracer: Tracer, ages: list[float]) -> Iterator[Span]:
        """One span per handled event, a child of the context its properties carry (so the trace
        of a decision continues across the hubs), linked to this batch's span; an event that
        carries no context is a child of the batch span instead. When it ends, the event's age
        (enqueued to handled, seconds) goes to `ages`."""
        parent = incoming(delivery.properties)
        batch = batch_span.get_span_context()
        attributes: dict[str, Any] = {"messaging.system": "eventhubs", "messaging.destination.name": self.hub,
                                      "messaging.consumer.group.name": self.consumer}
        if delivery.partition_id is not None:
            attributes["messaging.destination.partition.id"] = delivery.partition_id
        if delivery.sequence_number is not None:
            attributes["messaging.eventhubs.message.sequence_number"] = delivery.sequence_number
        if parent is None:
            span_cm = tracer.start_as_current_span(f"{self.consumer} handle", kind=SpanKind.CONSUMER,
                                                   attributes=attributes)
        else:
            span_cm = tracer.start_as_current_span(
                f"{self.consumer} handle", context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
                kind=SpanKind.CONSUMER, attributes=attributes, links=[Link(batch)] if batch.is_valid else None)
        with span_cm as span:
            try:
                yield span
            finally:
                if delivery.enqueued_time is not None:
                    ages.append(time.time() - delivery.enqueued_time / 1000)

    @staticmethod
    def _output_properties(result: StepResult, delivery: Delivery, span: Span) -> list[dict[str, str]]:
        """The properties of each output of one handled event (see `_publish`)."""
        if not result.publish:
            return []
        own = properties_of(span.get_span_context())
        mark = replay_of(delivery)
        out: list[dict[str, str]] = []
        for event in result.publish:
            parent = result.trace_parents.get(event.event_id)
            props = properties_of(parent) if parent is not None else dict(own)
            if mark is not None:
                props[PROP_REPLAY] = mark
            out.append(props)
        return out

    def _run_step(self, event: E, delivery: Delivery) -> StepResult:
        if self._step is not None:
            return self._step(event)
        assert self._step_with_delivery is not None
        return self._step_with_delivery(event, delivery)

    def _too_large(self, result: StepResult) -> OutputTooLarge | None:
        limit = self._max_output_bytes
        for out in result.publish:
            size = len(encode(out))
            if size > limit:
                return OutputTooLarge(f"{type(out).__name__} {out.event_id} is {size} bytes; hub "
                                      f"{self.publish_to!r} accepts at most {limit}")
        return None

    def _remember(self, event_id: str, result: StepResult) -> None:
        if len(self._pending) >= self._max_pending:
            # Bounded: only outputs of batches whose retries never came back here pile up.
            self._pending.pop(next(iter(self._pending)))
        self._pending[event_id] = result

    def _dead_letter(self, delivery: Delivery, exc: BaseException, event_id: str | None, code: str,
                     stack: str | None = None) -> DeadLetter:
        record = DeadLetter.create(
            body=delivery.body, error=exc, hub=self.hub, consumer=self.consumer, event_id=event_id,
            partition_id=delivery.partition_id, partition_key=delivery.partition_key,
            sequence_number=delivery.sequence_number, offset=delivery.offset,
            enqueued_time=delivery.enqueued_time, reason_code=code, stack=stack,
            properties={str(k): _text(v) or "" for k, v in delivery.properties.items()})
        level = logging.ERROR if code == HANDLER_ERROR else logging.WARNING
        log.log(level, "dead-lettering event from hub %s (consumer %s, partition %s, sequence %s): %s %s "
                "field=%s record=%s", self.hub, self.consumer, delivery.partition_id, delivery.sequence_number,
                code, record.error_type, record.field, record.dead_letter_id)
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
        counts += [(telemetry.EVENTS, n, {**base, "outcome": "skipped", "skip": reason})
                   for reason, n in outcome.skipped.items()]
        counts += [(telemetry.DEAD_LETTERS, 1, {**base, "error_type": r.error_type, "reason": r.reason_code})
                   for r in outcome.dead_letters]
        counts += [(telemetry.HANDLER_ERRORS, 1, {**base, "error_type": r.error_type})
                   for r in outcome.dead_letters if r.reason_code == HANDLER_ERROR]
        metrics.add_many(counts)
        metrics.record_outputs([*outcome.published, *outcome.observed])
        if self._after_batch is not None:
            self._after_batch(metrics)
