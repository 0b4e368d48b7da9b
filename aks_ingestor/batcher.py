"""Collects items into batches for the sink: at most `window` seconds of waiting, `max_batch` items.

Back-pressure instead of loss: when `max_pending` items wait (the sink is slow or failing), `add`
blocks the stream reader, which stops reading its socket; the reader's gap check backfills
anything Binance dropped meanwhile. A failed write is retried with backoff, never dropped; only
`close(deadline)` gives up, and says how many items it could not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from shared.adapters.binance.stream_client import Backoff
from shared.adapters.binance.stream_messages import Item

from .sinks import EventSink

log = logging.getLogger(__name__)

# Called after each written batch: (items, their receive perf_counter_ns, write start ns, write end ns).
BatchHook = Callable[[Sequence[Item], Sequence[int], int, int], None]


class Batcher:
    def __init__(self, sink: EventSink, *, window_s: float, max_batch: int, max_pending: int,
                 on_written: BatchHook | None = None, backoff: Backoff | None = None) -> None:
        self.sink = sink
        self._window_ns = int(window_s * 1e9)
        self._max_batch, self._max_pending = max_batch, max_pending
        self._items: list[Item] = []
        self._recv: list[int] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._space = asyncio.Event()
        self._closing = False
        self._deadline: float | None = None
        self._on_written = on_written
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        self._task: asyncio.Task[None] | None = None
        self.overflows = 0
        self.write_failures = 0
        self.written = 0
        self.batches = 0
        self.unwritten = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batcher")

    @property
    def pending(self) -> int:
        return len(self._items)

    async def add(self, item: Item, received_ns: int) -> None:
        if len(self._items) >= self._max_pending:
            self.overflows += 1
            log.warning("ingest queue full (%d items): the stream waits for the sink", len(self._items))
            while len(self._items) >= self._max_pending:
                self._space.clear()
                self._wake.set()
                await self._space.wait()
        self._items.append(item)
        self._recv.append(received_ns)
        n = len(self._items)
        if n == 1:
            self._wake.set()
        elif n >= self._max_batch:
            self._full.set()
            # A busy socket hands frames over without ever yielding to the loop; let the writer
            # take the full batch now instead of when the queue is full.
            await asyncio.sleep(0)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._items:
                if self._closing:
                    return
                continue
            if self._window_ns and not self._closing and len(self._items) < self._max_batch:
                wait = (self._recv[0] + self._window_ns - time.perf_counter_ns()) / 1e9
                if wait > 0:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), wait)
            batch, recv = self._items[:self._max_batch], self._recv[:self._max_batch]
            del self._items[:self._max_batch], self._recv[:self._max_batch]
            self._space.set()
            if not await self._write(batch, recv):
                self.unwritten += len(batch) + len(self._items)
                self._items.clear()
                self._recv.clear()
                return
            if self._items or self._closing:
                self._wake.set()

    async def _write(self, batch: list[Item], recv: list[int]) -> bool:
        sink = self.sink
        while True:
            start = time.perf_counter_ns()
            try:
                if sink.blocking:
                    await asyncio.to_thread(sink.write, batch)
                else:
                    sink.write(batch)
            except Exception as exc:  # any sink failure is retried, never dropped
                self.write_failures += 1
                delay = self._backoff.next_delay()
                if self._deadline is not None and time.monotonic() + delay > self._deadline:
                    log.error("giving up writing %d items at shutdown: %s", len(batch), exc)
                    return False
                log.warning("writing %d items failed (%s: %s); retrying in %.1fs", len(batch), type(exc).__name__,
                            exc, delay)
                await asyncio.sleep(delay)
                continue
            end = time.perf_counter_ns()
            self._backoff.reset()
            self.written += len(batch)
            self.batches += 1
            if self._on_written is not None:
                self._on_written(batch, recv, start, end)
            return True

    async def close(self, timeout: float = 25.0) -> int:
        """Write everything pending (retrying until `timeout` s from now); returns items not written."""
        self._closing = True
        self._deadline = time.monotonic() + timeout
        self._wake.set()
        self._full.set()
        if self._task is not None:
            await self._task
        return self.unwritten
