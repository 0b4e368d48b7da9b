"""Where normalized market records go: the `market-data` hub, or Binance Vision files on disk;
and where malformed messages are kept: JSON lines on disk, or dead-letter blobs.

The file sink writes what `marketflow replay` reads: `<SYMBOL>-<interval>-<YYYY-MM-DD>.csv` for
klines (the archive's 12 columns, headerless), `<SYMBOL>-trades-<YYYY-MM-DD>.csv` for trades (the
trade archive's 7 columns) and `<SYMBOL>-bookTicker-<YYYY-MM-DD>.csv` for book tickers (update id,
bid, bid qty, ask, ask qty, event time). Each record is written once and in order: a file that
already exists is continued after its last row, so a restarted ingestor neither repeats nor
reorders rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from opentelemetry.trace import SpanKind

from shared import telemetry, topology
from shared.adapters.binance.stream_messages import Item
from shared.adapters.binance.streams import StreamKey, StreamKind
from shared.adapters.deadletter import DeadLetter, DeadLetterSink
from shared.adapters.publisher import Publisher
from shared.events import BookTicker, Kline, Trade, pack

log = logging.getLogger(__name__)

INGESTOR = topology.MARKET_DATA.producer


class EventSink(Protocol):
    """Takes a batch of items; raises when it could not (the batcher retries, nothing is dropped)."""

    blocking: bool  # True: the batcher calls write() in a worker thread
    wants_rows: bool  # whether items need their Binance Vision row (the file sink)

    def write(self, items: Sequence[Item]) -> None: ...

    def last_seq(self, key: StreamKey) -> tuple[int, int] | None:
        """(sequence number, time in ms) of the last record already stored for `key`, if the sink knows."""
        ...

    def close(self) -> None: ...


class PublisherSink:
    """Publishes to `market-data` through a Publisher (Event Hubs: partition key = symbol, the
    `marketflow.type` property from the event type): each kline as one event, the trades and book
    tickers of each symbol in a write packed (`shared.events.packs`)."""

    blocking = True
    wants_rows = False

    def __init__(self, publisher: Publisher, hub: str = topology.MARKET_DATA.name) -> None:
        self.publisher = publisher
        self.hub = hub

    def write(self, items: Sequence[Item]) -> None:
        # One PRODUCER span per published batch roots the trace of every decision its events
        # lead to (the publisher writes its traceparent into each event). A span per event
        # would multiply spans by the trade and book-ticker rate for nothing a trace needs.
        events = pack([i.event for i in items])
        with telemetry.tracer().start_as_current_span(
                f"{self.hub} publish", kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "eventhubs", "messaging.destination.name": self.hub,
                            "messaging.batch.message_count": len(events), "marketflow.records": len(items)}):
            self.publisher.publish(self.hub, events)

    def last_seq(self, key: StreamKey) -> tuple[int, int] | None:
        return None

    def close(self) -> None:
        close = getattr(self.publisher, "close", None)
        if close is not None:
            close()


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def item_time(item: Item) -> int:
    """The time that dates a record's file: open time, trade time, event time (ms)."""
    event = item.event
    if isinstance(event, Kline):
        return event.open_time
    if isinstance(event, Trade):
        return event.trade_time
    assert isinstance(event, BookTicker)
    return event.event_time


def file_stem(key: StreamKey) -> str:
    if key.kind is StreamKind.KLINE:
        return f"{key.symbol}-{key.interval}"
    return f"{key.symbol}-trades" if key.kind is StreamKind.TRADE else f"{key.symbol}-bookTicker"


def _time_column(kind: StreamKind) -> int:
    return {StreamKind.KLINE: 0, StreamKind.TRADE: 4, StreamKind.BOOK_TICKER: 5}[kind]


def _last_row(path: Path) -> str | None:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 4096))
        tail = fh.read().decode("utf-8", "replace").rstrip("\n").rsplit("\n", 1)[-1]
    return tail or None


class DirSink:
    """Binance Vision daily CSV files under `root` (created when missing), one open file per stream."""

    blocking = False
    wants_rows = True

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._open: dict[StreamKey, tuple[str, IO[str]]] = {}
        self._last: dict[StreamKey, int] = {}
        self.rows_written = 0

    def path_of(self, key: StreamKey, day: str) -> Path:
        return self.root / f"{file_stem(key)}-{day}.csv"

    def last_seq(self, key: StreamKey) -> tuple[int, int] | None:
        files = sorted(self.root.glob(f"{file_stem(key)}-????-??-??.csv"))
        for path in reversed(files):
            row = _last_row(path)
            if row is None:
                continue
            cols = row.split(",")
            try:
                return int(cols[0]), int(cols[_time_column(key.kind)])
            except (ValueError, IndexError):
                log.warning("%s: last row %r is not a record; not resuming from it", path, row[:80])
                return None
        return None

    def _file(self, key: StreamKey, day: str) -> IO[str]:
        current = self._open.get(key)
        if current is not None and current[0] == day:
            return current[1]
        if current is not None:
            current[1].close()
        if key not in self._last:
            resume = self.last_seq(key)
            self._last[key] = resume[0] if resume is not None else -1
        fh = self.path_of(key, day).open("a", encoding="utf-8", newline="\n")
        self._open[key] = (day, fh)
        return fh

    def write(self, items: Sequence[Item]) -> None:
        touched: set[int] = set()
        for item in items:
            key = item.key
            fh = self._file(key, _day(item_time(item)))
            if item.seq <= self._last[key]:
                continue  # already on disk (a restart resumed before it)
            fh.write(item.row + "\n")
            self._last[key] = item.seq
            self.rows_written += 1
            touched.add(id(fh))
        for _, fh in self._open.values():
            if id(fh) in touched:
                fh.flush()

    def close(self) -> None:
        for _, fh in self._open.values():
            fh.close()
        self._open.clear()


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message that was not published, with the raw text and the reason."""

    received_at: int  # Unix ms UTC
    connection: str  # the stream URL it arrived on
    reason: str
    raw: str


class MalformedSink(Protocol):
    blocking: bool

    def keep(self, record: Malformed) -> None: ...


class DirMalformedSink:
    """JSON lines, one file per UTC day: `<root>/malformed-<YYYY-MM-DD>.jsonl`."""

    blocking = False

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def keep(self, record: Malformed) -> None:
        line = json.dumps({"received_at": record.received_at, "connection": record.connection,
                           "reason": record.reason, "raw": record.raw}, ensure_ascii=False)
        with (self.root / f"malformed-{_day(record.received_at)}.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class DeadLetterMalformedSink:
    """Dead-letter records (`shared.adapters.deadletter`) in a DeadLetterSink: blobs in Azure."""

    blocking = True

    def __init__(self, sink: DeadLetterSink) -> None:
        self.sink = sink

    def keep(self, record: Malformed) -> None:
        error = ValueError(f"{record.reason} (on {record.connection})")
        self.sink.put(DeadLetter.create(body=record.raw.encode("utf-8"), error=error, hub=topology.MARKET_DATA.name,
                                        consumer=INGESTOR, enqueued_time=record.received_at,
                                        now_ms=record.received_at))


class InMemoryMalformedSink:
    blocking = False

    def __init__(self) -> None:
        self.records: list[Malformed] = []

    def keep(self, record: Malformed) -> None:
        self.records.append(record)
