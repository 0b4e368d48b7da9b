"""The ingestor: Binance streams in, every closed bar, trade and book ticker out once and in order.

Per stream it keeps the last sequence number written (kline open time, trade id, book update id).
A record at or below it is a duplicate (a reconnect replaying, a stream repeating) and is
dropped; a kline or trade beyond the next expected one exposes a gap, which is backfilled over
REST before the record is passed on, so consumers see each bar once and in order, across
reconnects too. Event ids are deterministic, so even a record that got past this (a restart
without a file sink to resume from) is the same event to every consumer's dedup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from shared.adapters.binance.stream_backfill import BackfillError, RestBackfill
from shared.adapters.binance.stream_client import Backoff, ConnectionThrottle, StreamConnection
from shared.adapters.binance.stream_messages import (
    Item,
    MalformedMessage,
    Reconnect,
    StreamParser,
    kline_item,
    trade_item,
)
from shared.adapters.binance.streams import StreamKey, StreamKind, connection_groups
from shared.events import Kline, Trade
from shared.market import INTERVAL_MS

from .batcher import Batcher, BatchHook
from .metrics import IngestCollector
from .settings import IngestSettings
from .sinks import EventSink, Malformed, MalformedSink

log = logging.getLogger("marketflow.ingestor")

BACKFILL_ATTEMPTS = 5
# Binance cuts a connection at 24 hours; rotating 10 minutes earlier, the new connection's gap check
# backfills whatever the switch missed.
ROTATE_AFTER_S = 24 * 3600.0 - 600.0
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class IngestStats:
    bars: int = 0
    trades: int = 0
    book_tickers: int = 0
    open_updates: int = 0  # non-final kline updates, not published
    duplicates: int = 0
    gaps: int = 0
    gaps_unfilled: int = 0
    bars_backfilled: int = 0
    trades_backfilled: int = 0
    open_rest_bars_dropped: int = 0
    malformed: int = 0
    messages: dict[str, int] = field(default_factory=dict)  # per stream name (bounded by the subscription)
    last_event_time: dict[str, int] = field(default_factory=dict)  # per symbol, ms

    def count(self, item: Item) -> None:
        kind = item.key.kind
        if kind is StreamKind.KLINE:
            self.bars += 1
        elif kind is StreamKind.TRADE:
            self.trades += 1
        else:
            self.book_tickers += 1


class Ingestor:
    """Wires connections, the parser, the gap check, backfill, the batcher and the sinks."""

    def __init__(self, settings: IngestSettings, sink: EventSink, malformed: MalformedSink, *,
                 rest: RestBackfill | None = None, throttle: ConnectionThrottle | None = None,
                 backoff_base: float = 0.5, rotate_after: float = ROTATE_AFTER_S, on_written: BatchHook | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.settings = settings
        self.sink = sink
        self.malformed_sink = malformed
        self.rest = rest if rest is not None else (RestBackfill(settings.rest_url) if settings.rest_url else None)
        self.stats = IngestStats()
        self.registry = CollectorRegistry(auto_describe=True)  # this ingestor's own: several never clash
        self.publish_latency = Histogram("marketflow_ingest_publish_seconds", "Time to write one batch to the sink",
                                         buckets=LATENCY_BUCKETS, registry=self.registry)
        self._user_hook = on_written
        self._now_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.batcher = Batcher(sink, window_s=settings.batch_window_ms / 1000, max_batch=settings.max_batch,
                               max_pending=settings.max_pending, on_written=self._written)
        self._last: dict[StreamKey, int] = {}
        self._last_time: dict[StreamKey, int] = {}
        keys = settings.stream_keys()
        for key in keys:
            resume = sink.last_seq(key)
            if resume is not None:
                self._last[key], self._last_time[key] = resume
        throttle = throttle or ConnectionThrottle()
        self.connections: list[StreamConnection] = []
        for group in connection_groups(keys):
            conn = StreamConnection(settings.stream_url, group, self._handler(group),
                                    stale_timeout=settings.stale_timeout, rotate_after=rotate_after, throttle=throttle,
                                    backoff=Backoff(base=backoff_base))
            self.connections.append(conn)
        self.stop = asyncio.Event()
        self.registry.register(IngestCollector(self))  # last: registering reads every family once

    # -- the message path ------------------------------------------------------------------------

    def _handler(self, keys: tuple[StreamKey, ...]) -> Callable[[str | bytes, int], Awaitable[Reconnect | None]]:
        parser = StreamParser(keys, rows=self.sink.wants_rows)
        url_holder: list[str] = []
        messages = self.stats.messages
        names = {k: k.name for k in keys}

        async def handle(frame: str | bytes, received_ns: int) -> Reconnect | None:
            try:
                result = parser.parse(frame, self._now_ms())
            except MalformedMessage as exc:
                if not url_holder:
                    url_holder.append(next(c.state.url for c in self.connections if c.keys == keys))
                await self._keep_malformed(frame, str(exc), url_holder[0])
                return None
            if result is None:
                self.stats.open_updates += 1
                return None
            if isinstance(result, Reconnect):
                return result
            name = names[result.key]
            messages[name] = messages.get(name, 0) + 1
            await self.accept(result, received_ns)
            return None

        return handle

    async def accept(self, item: Item, received_ns: int) -> None:
        """Pass `item` on unless it is a duplicate; backfill first if it shows a gap."""
        key = item.key
        last = self._last.get(key)
        if last is not None:
            if item.seq <= last:
                self.stats.duplicates += 1
                return
            if key.kind is StreamKind.KLINE:
                assert key.interval is not None
                if item.seq != last + INTERVAL_MS[key.interval]:
                    await self._backfill_klines(key, last, item, received_ns)
            elif key.kind is StreamKind.TRADE and item.seq != last + 1:
                await self._backfill_trades(key, last, item, received_ns)
        self._last[key] = item.seq
        self._last_time[key] = item.event.event_time
        self.stats.count(item)
        await self.batcher.add(item, received_ns)

    async def _keep_malformed(self, frame: str | bytes, reason: str, url: str) -> None:
        self.stats.malformed += 1
        raw = frame if isinstance(frame, str) else frame.decode("utf-8", "backslashreplace")
        record = Malformed(received_at=self._now_ms(), connection=url, reason=reason, raw=raw)
        log.warning("malformed message on %s kept: %s", url, reason)
        sink = self.malformed_sink
        for attempt in range(BACKFILL_ATTEMPTS):
            try:
                if sink.blocking:
                    await asyncio.to_thread(sink.keep, record)
                else:
                    sink.keep(record)
                return
            except Exception as exc:  # retried; at the end it is logged with the raw text
                log.warning("keeping a malformed message failed (%s), attempt %d", exc, attempt + 1)
                await asyncio.sleep(0.2 * 2 ** attempt)
        log.error("malformed message could not be kept; reason %s; raw %r", reason, raw[:2000])

    async def _rest_call(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        backoff = Backoff(base=0.5, cap=8.0)
        for attempt in range(BACKFILL_ATTEMPTS):
            try:
                return await call()
            except BackfillError as exc:
                delay = exc.retry_after if exc.retry_after is not None else backoff.next_delay()
                log.warning("backfill %s failed (%s), attempt %d", what, exc, attempt + 1)
                if attempt + 1 < BACKFILL_ATTEMPTS:
                    await asyncio.sleep(delay)
        return None

    async def _backfill_klines(self, key: StreamKey, last: int, item: Item, received_ns: int) -> None:
        assert key.interval is not None
        step = INTERVAL_MS[key.interval]
        start, missing = last + step, (item.seq - last) // step - 1
        self.stats.gaps += 1
        log.info("gap in %s: %d bars from %d; backfilling", key.name, missing, start)
        rows = None
        if self.rest is not None:
            rest = self.rest
            rows = await self._rest_call(key.name, lambda: rest.klines(key.symbol, key.interval or "", start,
                                                                       item.seq - 1))
        filled = 0
        now = self._now_ms()
        for row in rows or ():
            try:
                bf = kline_item(key, row)
            except MalformedMessage as exc:
                await self._keep_malformed(repr(row), f"REST kline: {exc}", self.rest.base_url if self.rest else "")
                continue
            event = bf.event
            assert isinstance(event, Kline)
            if bf.seq >= item.seq or event.close_time >= now:
                self.stats.open_rest_bars_dropped += event.close_time >= now
                continue  # REST's last kline may still be open; the stream brings it closed
            if bf.seq <= self._last[key]:
                continue
            self._last[key] = bf.seq
            self._last_time[key] = event.event_time
            self.stats.count(bf)
            self.stats.bars_backfilled += 1
            filled += 1
            await self.batcher.add(bf, received_ns)
        if filled < missing:
            self.stats.gaps_unfilled += 1
            log.warning("gap in %s: %d of %d bars backfilled (the rest is not on REST either)", key.name, filled,
                        missing)

    async def _backfill_trades(self, key: StreamKey, last: int, item: Item, received_ns: int) -> None:
        self.stats.gaps += 1
        trade = item.event
        assert isinstance(trade, Trade)
        since = self._last_time.get(key, trade.trade_time)
        log.info("gap in %s: trade ids %d..%d; backfilling", key.name, last + 1, item.seq - 1)
        aggs = None
        if self.rest is not None:
            rest = self.rest
            aggs = await self._rest_call(key.name, lambda: rest.agg_trades(key.symbol, since, trade.trade_time))
        for agg in aggs or ():
            try:
                first, final = int(agg["f"]), int(agg["l"])
                if final <= self._last[key]:
                    continue
                if first >= item.seq:
                    break
                # An aggregate of several trades (one taker order, one price) fills their ids as one
                # Trade carrying the total quantity, under the first id not yet written.
                tid = max(first, self._last[key] + 1)
                bf = trade_item(key, tid, agg["p"], agg["q"], agg["T"], agg["m"], agg.get("M", True),
                                self.sink.wants_rows)
            except (MalformedMessage, KeyError, ValueError, TypeError) as exc:
                await self._keep_malformed(repr(agg), f"REST aggTrade: {exc}", self.rest.base_url if self.rest else "")
                continue
            self._last[key] = min(final, item.seq - 1)
            self._last_time[key] = bf.event.event_time
            self.stats.count(bf)
            self.stats.trades_backfilled += 1
            await self.batcher.add(bf, received_ns)
        if self._last[key] != item.seq - 1:
            self.stats.gaps_unfilled += 1
            log.warning("gap in %s: trades up to id %d backfilled, %d expected", key.name, self._last[key],
                        item.seq - 1)

    def _written(self, items: Sequence[Item], recv: Sequence[int], start: int, end: int) -> None:
        self.publish_latency.observe((end - start) / 1e9)
        last = self.stats.last_event_time
        for item in items:
            last[item.key.symbol] = item.event.event_time
        if self._user_hook is not None:
            self._user_hook(items, recv, start, end)

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def reconnects(self) -> int:
        return sum(c.state.reconnects for c in self.connections)

    def streams_connected(self) -> bool:
        """Readiness: every stream connection is open."""
        return all(c.state.connected for c in self.connections)

    def not_stopping(self) -> bool:
        """Readiness: no shutdown has begun."""
        return not self.stop.is_set()

    async def run(self) -> int:
        """Runs until `self.stop` is set; then flushes. Returns the number of items not written."""
        self.batcher.start()
        tasks = [asyncio.create_task(c.run(self.stop), name=f"stream-{i}") for i, c in enumerate(self.connections)]
        try:
            await self.stop.wait()
        finally:
            self.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            unwritten = await self.batcher.close()
            if self.rest is not None:
                await self.rest.close()
            self.sink.close()
        return unwritten

    def summary(self) -> str:
        s = self.stats
        parts = [f"bars {s.bars}"]
        if self.settings.trades:
            parts.append(f"trades {s.trades}")
        if self.settings.book_ticker:
            parts.append(f"book tickers {s.book_tickers}")
        parts += [f"duplicates dropped {s.duplicates}", f"gaps {s.gaps} ({s.gaps_unfilled} not fully filled)",
                  f"bars backfilled {s.bars_backfilled}"]
        if self.settings.trades:
            parts.append(f"trades backfilled {s.trades_backfilled}")
        stale = sum(c.state.stale_reconnects for c in self.connections)
        parts += [f"reconnects {self.reconnects} ({stale} stale)", f"malformed {s.malformed}",
                  f"queue overflows {self.batcher.overflows}", f"written {self.batcher.written}"]
        return "ingest: " + ", ".join(parts)
