"""The event log: per partition, events in sequence order, optionally persisted to an append-only file.

Each event is kept as the raw AMQP sections the producer sent (header; message annotations the
producer set; properties, application properties, body, footer), so a consumer receives the bytes
the producer encoded plus the service annotations. Offsets are byte positions in the partition's
stream, as in Event Hubs. Retention drops events older than the hub's retention; with a data
directory each partition appends to `<dir>/<hub>/<partition>.log` (length-prefixed AMQP lists)
and reloads it on start.
"""

from __future__ import annotations

import bisect
import logging
import os
import struct
import time
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from . import codec
from .config import HubConfig, NamespaceConfig

log = logging.getLogger("emulator.store")
_LEN = struct.Struct(">I")
_OFFSET = attrgetter("offset")
_ENQUEUED = attrgetter("enqueued_ms")
COMPACT_MIN_BYTES = 1 << 20


class StoredEvent(NamedTuple):
    sequence_number: int
    offset: int
    enqueued_ms: int
    partition_key: str | None
    header: bytes        # the header section, or b""
    annotations: bytes   # the producer's message-annotation pairs, encoded, without the map constructor
    n_annotations: int   # number of items (keys + values) in `annotations`
    rest: bytes          # properties, application-properties, body, footer, as sent

    @property
    def size(self) -> int:
        return len(self.header) + len(self.annotations) + len(self.rest)


class IncomingEvent(NamedTuple):
    """A parsed event before the service assigns its place in the partition."""

    partition_key: str | None
    header: bytes
    annotations: bytes
    n_annotations: int
    rest: bytes


def now_ms() -> int:
    return int(time.time() * 1000)


class Partition:
    """One partition's log and the consumers waiting for it to grow."""

    def __init__(self, hub: str, pid: str, retention_hours: float, log_path: Path | None = None) -> None:
        self.hub = hub
        self.id = pid
        self.retention_ms = int(retention_hours * 3600 * 1000)
        self.events: list[StoredEvent] = []
        self.base_seq = 0          # sequence number of events[0]
        self.next_seq = 0
        self.next_offset = 0
        self.last_enqueued_ms = 0
        self.listeners: set[Callable[[], None]] = set()
        self.dead_bytes = 0  # bytes of expired events still in the file
        self._path = log_path
        self._file = None
        if log_path is not None:
            self._load(log_path)
            self._file = open(log_path, "ab")  # noqa: SIM115 - kept open for the process lifetime

    # -- persistence ------------------------------------------------------------------------
    @staticmethod
    def _record(ev: StoredEvent) -> bytes:
        body = codec.encode([ev.sequence_number, ev.offset, codec.Timestamp(ev.enqueued_ms), ev.partition_key,
                             ev.header, ev.n_annotations, ev.annotations, ev.rest])
        return _LEN.pack(len(body)) + body

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            return
        data = path.read_bytes()
        pos, good = 0, 0
        loaded: list[StoredEvent] = []
        while pos + 4 <= len(data):
            (n,) = _LEN.unpack_from(data, pos)
            if pos + 4 + n > len(data):
                break
            try:
                f = codec.decode(data[pos + 4:pos + 4 + n])
                loaded.append(StoredEvent(int(f[0]), int(f[1]), int(f[2]), f[3], f[4], f[6], int(f[5]), f[7]))
            except (codec.DecodeError, IndexError, TypeError, ValueError):
                break
            pos += 4 + n
            good = pos
        if good != len(data):
            log.warning("%s: dropping %d bytes of a torn or corrupt tail", path, len(data) - good)
        if loaded:
            last = loaded[-1]
            self.next_seq = last.sequence_number + 1
            self.next_offset = last.offset + last.size
            self.last_enqueued_ms = last.enqueued_ms
            self.events = loaded
            self.base_seq = loaded[0].sequence_number
        kept = self._expire(now_ms())
        if kept or good != len(data):
            self._rewrite()

    def _rewrite(self) -> None:
        self.dead_bytes = 0
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for ev in self.events:
                f.write(self._record(ev))
        if self._file is not None:
            self._file.close()
        os.replace(tmp, self._path)
        if self._file is not None:
            self._file = open(self._path, "ab")  # noqa: SIM115

    # -- the log ----------------------------------------------------------------------------
    def append(self, incoming: list[IncomingEvent]) -> list[StoredEvent]:
        """Give each event its sequence number, offset and enqueued time (one time per call, as a batch
        is enqueued at once) and wake the consumers."""
        t = max(now_ms(), self.last_enqueued_ms)
        out = []
        seq, offset = self.next_seq, self.next_offset
        for e in incoming:
            ev = StoredEvent(seq, offset, t, e.partition_key, e.header, e.annotations, e.n_annotations, e.rest)
            out.append(ev)
            seq += 1
            offset += ev.size
        self.events.extend(out)
        self.next_seq, self.next_offset, self.last_enqueued_ms = seq, offset, t
        if self._file is not None:
            self._file.write(b"".join(self._record(ev) for ev in out))
            self._file.flush()
        for cb in list(self.listeners):
            cb()
        return out

    def get(self, seq: int) -> StoredEvent | None:
        i = seq - self.base_seq
        if 0 <= i < len(self.events):
            return self.events[i]
        return None

    @property
    def first_seq(self) -> int:
        """The first retained sequence number (`next_seq` when the partition is empty)."""
        return self.events[0].sequence_number if self.events else self.next_seq

    def start_seq(self, field: str, op: str, value: str) -> int:
        """The first sequence number a receiver with selector `<field> <op> '<value>'` gets."""
        inclusive = op == ">="
        if field == "x-opt-offset":
            if value == "-1":
                return self.first_seq
            if value == "@latest":
                return self.next_seq
            off = int(value)
            i = (bisect.bisect_left if inclusive else bisect.bisect_right)(self.events, off, key=_OFFSET)
        elif field == "x-opt-sequence-number":
            s = int(value)
            start = s if inclusive else s + 1
            return max(start, self.first_seq)
        elif field == "x-opt-enqueued-time":
            t = int(value)
            i = (bisect.bisect_left if inclusive else bisect.bisect_right)(self.events, t, key=_ENQUEUED)
        else:
            raise ValueError(f"unsupported filter field {field!r}")
        return self.base_seq + i

    def _expire(self, now: int) -> int:
        if self.retention_ms <= 0 or not self.events:
            return 0
        cutoff = now - self.retention_ms
        n = bisect.bisect_left(self.events, cutoff, key=_ENQUEUED)
        if n:
            self.dead_bytes += sum(e.size for e in self.events[:n])
            del self.events[:n]
            self.base_seq += n
        return n

    def expire(self, now: int | None = None) -> int:
        """Drop events past retention; returns how many were dropped. The file is compacted once the
        dropped events outweigh the kept ones (not on every sweep: a long run would rewrite it constantly);
        until then a restart skips them on load."""
        n = self._expire(now_ms() if now is None else now)
        if n and self.dead_bytes > max(sum(e.size for e in self.events), COMPACT_MIN_BYTES):
            self._rewrite()
        return n

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Hub:
    def __init__(self, config: HubConfig, data_dir: Path | None) -> None:
        self.config = config
        self.name = config.name
        self.created_ms = now_ms()
        self.partitions = [
            Partition(config.name, str(i), config.retention_hours,
                      None if data_dir is None else data_dir / config.name / f"{i}.log")
            for i in range(config.partitions)
        ]
        self.groups = {g.lower(): g for g in config.consumer_groups}
        self._rr = 0

    def partition(self, pid: str) -> Partition | None:
        try:
            i = int(pid)
        except ValueError:
            return None
        if str(i) != pid or not 0 <= i < len(self.partitions):
            return None
        return self.partitions[i]

    def next_round_robin(self) -> Partition:
        p = self.partitions[self._rr % len(self.partitions)]
        self._rr += 1
        return p


class Namespace:
    def __init__(self, config: NamespaceConfig, data_dir: str | Path | None = None) -> None:
        self.config = config
        self.name = config.name
        root = None if data_dir is None else Path(data_dir)
        self.hubs = {h.name.lower(): Hub(h, root) for h in config.hubs}

    def hub(self, name: str) -> Hub | None:
        return self.hubs.get(name.lower())

    def expire(self) -> int:
        return sum(p.expire() for h in self.hubs.values() for p in h.partitions)

    def close(self) -> None:
        for h in self.hubs.values():
            for p in h.partitions:
                p.close()
