"""`marketflow replay-hub`: replay events into an Event Hub from Capture files, from another hub, or from
Binance kline files, at full speed or a multiple of real time.

Replayed events keep their bytes, message id (the event id) and partition key, so downstream
deduplication still holds, and carry an application property `replay` naming the source. Start
positions only apply to a consumer group with no checkpoint: a replay read by a running pipeline
needs its own consumer group, or a fresh checkpoint, or the consumers resume where they were.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import CliError

REPLAY_PROPERTY = "replay"
_SYSTEM_TO_ATTR = {"message-id": "message_id", "correlation-id": "correlation_id", "content-type": "content_type"}


class Replayed(NamedTuple):
    """One event to replay: its original time (Unix ms, for pacing), partition key and EventData."""

    time_ms: int
    partition_key: str | None
    data: Any


def _text(v: Any) -> Any:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def from_capture(paths: Sequence[Path]) -> Iterator[Replayed]:
    """Events of Event Hubs Capture Avro files (schema SequenceNumber, Offset, EnqueuedTimeUtc,
    SystemProperties, Properties, Body), in file order."""
    import fastavro
    from azure.eventhub import EventData

    for path in paths:
        try:
            with open(path, "rb") as f:
                records = list(fastavro.reader(f))
        except (OSError, ValueError, EOFError) as exc:
            raise CliError(f"cannot read Capture file {path}: {exc}") from None
        for r in records:
            if not isinstance(r, dict) or "EnqueuedTimeUtc" not in r:
                raise CliError(f"{path} is not an Event Hubs Capture file (no EnqueuedTimeUtc)")
            system = r.get("SystemProperties") or {}
            data = EventData(r.get("Body") or b"")
            data.properties = dict(r.get("Properties") or {})
            for key, attr in _SYSTEM_TO_ATTR.items():
                if system.get(key) is not None:
                    setattr(data, attr, _text(system[key]))
            t = system.get("x-opt-enqueued-time")
            if not isinstance(t, int):
                t = int(dt.datetime.strptime(r["EnqueuedTimeUtc"], "%m/%d/%Y %I:%M:%S %p")
                        .replace(tzinfo=dt.UTC).timestamp() * 1000)
            pkey = system.get("x-opt-partition-key")
            yield Replayed(t, _text(pkey), data)


def from_hub(conn: str, hub: str, group: str, *, since: dt.datetime | None, sequence: int | None) -> Iterator[Replayed]:
    """Events of every partition of `hub` from a time or sequence number up to what was last enqueued when
    the replay started (then it stops), partition by partition."""
    from azure.eventhub import EventData, EventHubConsumerClient

    start: Any = since if since is not None else sequence if sequence is not None else "-1"
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group=group, eventhub_name=hub)
    try:
        pids = client.get_partition_ids()
        ends = {p: client.get_partition_properties(p)["last_enqueued_sequence_number"] for p in pids}
    except Exception as exc:
        client.close()
        raise CliError(f"cannot read hub {hub!r}: {type(exc).__name__}: {exc}") from None
    client.close()
    for pid in pids:
        if ends[pid] < 0:
            continue
        events: list[Any] = []
        consumer = EventHubConsumerClient.from_connection_string(conn, consumer_group=group, eventhub_name=hub)

        def on_batch(ctx: Any, batch: list[Any], _events: list[Any] = events, _end: int = ends[pid],
                     _c: Any = consumer) -> None:
            _events.extend(e for e in batch if e.sequence_number <= _end)
            if not batch or batch[-1].sequence_number >= _end:
                _c.close()

        import threading

        t = threading.Thread(target=consumer.receive_batch, kwargs=dict(
            on_event_batch=on_batch, partition_id=pid, starting_position=start, starting_position_inclusive=True,
            max_batch_size=500, max_wait_time=2), daemon=True)
        t.start()
        t.join()
        for e in events:
            data = EventData(b"".join(e.body) if not isinstance(e.body, bytes) else e.body)
            data.properties = {_text(k): _text(v) for k, v in (e.properties or {}).items()}
            for attr in ("message_id", "correlation_id", "content_type"):
                if getattr(e, attr) is not None:
                    setattr(data, attr, getattr(e, attr))
            key = e.partition_key
            yield Replayed(int(e.enqueued_time.timestamp() * 1000), _text(key), data)


def from_binance(paths: Sequence[Path], symbol: str | None) -> Iterator[Replayed]:
    """Kline events of Binance kline files, encoded as the publisher encodes them (same ids, same key)."""
    from shared.adapters.azure.eventhub_publisher import to_event_data
    from shared.data import DataError, read_klines

    try:
        series = read_klines(list(paths), symbol=symbol)
    except (DataError, ValueError) as exc:
        raise CliError(f"bad market data: {exc}") from None
    for bar in series.bars:
        kline = bar.to_kline()
        yield Replayed(kline.close_time, kline.symbol, to_event_data(kline))


class Pacer:
    """Sleeps so events go out at `speed` times their original pace (None: full speed)."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self.t0_event: int | None = None
        self.t0_wall = 0.0

    def wait(self, time_ms: int) -> None:
        if self.speed is None:
            return
        if self.t0_event is None:
            self.t0_event, self.t0_wall = time_ms, time.monotonic()
            return
        due = self.t0_wall + (time_ms - self.t0_event) / 1000 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def replay(events: Iterator[Replayed], producer: Any, *, source: str, speed: float | None,
           progress: Any = None) -> int:
    """Send `events` in order: consecutive events with the same key and due together share a batch."""
    from shared import telemetry
    from shared.adapters.tracing import new_trace, without_trace

    tracer = telemetry.tracer()
    pacer = Pacer(speed)
    sent = 0
    batch = None
    batch_key: Any = object()
    for ev in events:
        # Each replayed event starts a trace of its own (the captured traceparent is dropped).
        trace_props = new_trace(tracer, "replay publish",
                                {"messaging.system": "eventhubs", "marketflow.replay": source})
        ev.data.properties = {**without_trace(ev.data.properties or {}), **trace_props, REPLAY_PROPERTY: source}
        due_now = speed is None
        if batch is not None and (ev.partition_key != batch_key or not due_now):
            producer.send_batch(batch)
            batch = None
        pacer.wait(ev.time_ms)
        if batch is None:
            batch, batch_key = producer.create_batch(partition_key=ev.partition_key), ev.partition_key
        try:
            batch.add(ev.data)
        except ValueError:
            if len(batch) == 0:
                raise CliError("an event does not fit in an empty batch") from None
            producer.send_batch(batch)
            batch = producer.create_batch(partition_key=ev.partition_key)
            batch.add(ev.data)
        sent += 1
        if progress is not None:
            progress(1)
    if batch is not None and len(batch):
        producer.send_batch(batch)
    return sent


def _speed(text: str) -> float | None:
    if text in ("full", "max"):
        return None
    if text == "realtime":
        return 1.0
    try:
        value = float(text[1:] if text.startswith("x") else text)
    except ValueError:
        raise CliError(f"--speed must be full, realtime or xN (e.g. x10), not {text!r}") from None
    if value <= 0:
        raise CliError("--speed must be positive")
    return value


def _connection(value: str | None) -> str:
    conn = value or os.environ.get("EVENTHUB")
    if not conn:
        raise CliError("no Event Hubs connection: pass --connection or set EVENTHUB")
    return conn


def _run(args: argparse.Namespace) -> int:
    from azure.eventhub import EventHubProducerClient
    from tqdm import tqdm

    speed = _speed(args.speed)
    conn = _connection(args.connection)
    sources = [bool(args.capture), bool(args.from_hub), bool(args.binance)]
    if sum(sources) != 1:
        raise CliError("give exactly one source: --capture FILES, --from-hub HUB or --binance FILES")
    paths = [Path(p) for p in (args.capture or args.binance or [])]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CliError(f"no such file: {', '.join(missing)}")
    if args.capture:
        events, source, total = from_capture(paths), "capture", None
    elif args.binance:
        events, source, total = from_binance(paths, args.symbol), "binance", None
    else:
        since = None
        if args.since:
            try:
                since = dt.datetime.fromisoformat(args.since)
            except ValueError:
                raise CliError(f"--since must be an ISO time, not {args.since!r}") from None
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.UTC)
        events = from_hub(_connection(args.from_connection or conn), args.from_hub, args.group, since=since,
                          sequence=args.sequence)
        source, total = f"hub:{args.from_hub}", None
    producer = EventHubProducerClient.from_connection_string(conn, eventhub_name=args.to)
    try:
        with tqdm(total=total, desc=f"replay into {args.to}", unit=" events", disable=None, file=sys.stderr,
                  leave=False) as bar:
            n = replay(events, producer, source=source, speed=speed, progress=bar.update)
    except CliError:
        raise
    except Exception as exc:
        raise CliError(f"replay into hub {args.to!r} failed: {type(exc).__name__}: {exc}") from None
    finally:
        producer.close()
    print(f"replayed {n} events into {args.to} (property {REPLAY_PROPERTY}={source})")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("replay-hub", help="replay events into an Event Hub (Capture files, a hub, Binance files)",
                       description="Replay events into an Event Hub, keeping their ids and keys and adding a "
                       "'replay' property. Consumers read a replay with a start position only without a "
                       "checkpoint: use a consumer group of its own, or a fresh checkpoint.")
    p.add_argument("--to", required=True, help="target hub")
    p.add_argument("--connection", help="target namespace connection string (default: $EVENTHUB)")
    p.add_argument("--capture", nargs="+", metavar="FILE", help="Event Hubs Capture Avro files")
    p.add_argument("--from-hub", metavar="HUB", help="source hub (same namespace unless --from-connection)")
    p.add_argument("--from-connection", help="source namespace connection string")
    p.add_argument("--group", default="$Default", help="consumer group to read the source hub with")
    p.add_argument("--since", help="source hub: start at this enqueued time (ISO 8601, UTC if no zone)")
    p.add_argument("--sequence", type=int, help="source hub: start at this sequence number (every partition)")
    p.add_argument("--binance", nargs="+", metavar="FILE", help="Binance kline files (CSV or zip)")
    p.add_argument("--symbol", help="symbol of the Binance files when their names do not say")
    p.add_argument("--speed", default="full", help="full (default), realtime or xN: N times the original pace")
    p.set_defaults(func=_run)
