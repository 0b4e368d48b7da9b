"""The ingestor's Prometheus metrics: a prometheus_client collector that reads the live counters
on each scrape (nothing is copied or kept between scrapes), beside the publish-latency histogram,
in the ingestor's own registry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .ingestor import Ingestor

PREFIX = "marketflow_ingest_"


def _counter(name: str, help: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, help, value=value)


def _gauge(name: str, help: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, help, value=value)


class IngestCollector(Collector):
    """One ingestor's counters and gauges, read when scraped."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor

    def collect(self) -> Iterator[Metric]:
        ing = self.ingestor
        s, conns = ing.stats, ing.connections
        messages = CounterMetricFamily(PREFIX + "messages", "Market records received per stream", labels=["stream"])
        for name, n in sorted(s.messages.items()):
            messages.add_metric([name], n)
        yield messages
        yield _counter("open_kline_updates", "Non-final kline updates (not published)", s.open_updates)
        yield _counter("reconnects", "Stream reconnects (any reason)", ing.reconnects)
        yield _counter("stale_reconnects", "Reconnects because a stream was silent past the stale timeout",
                       sum(c.state.stale_reconnects for c in conns))
        yield _counter("rotations", "Connections rotated before Binance's 24-hour cut",
                       sum(c.state.rotations for c in conns))
        yield _counter("gaps_found", "Gaps in kline open times or trade ids", s.gaps)
        yield _counter("gaps_unfilled", "Gaps REST could not fill completely", s.gaps_unfilled)
        backfilled = CounterMetricFamily(PREFIX + "backfilled", "Records backfilled over REST", labels=["kind"])
        backfilled.add_metric(["kline"], s.bars_backfilled)
        backfilled.add_metric(["trade"], s.trades_backfilled)
        yield backfilled
        yield _counter("duplicates_dropped", "Records at or below the last one written for their stream",
                       s.duplicates)
        yield _counter("malformed", "Malformed messages kept (dead-lettered), never published", s.malformed)
        yield _counter("queue_overflows", "Times the pending queue was full and the stream waited",
                       ing.batcher.overflows)
        yield _counter("write_failures", "Failed batch writes (retried)", ing.batcher.write_failures)
        yield _counter("published", "Records written to the sink", ing.batcher.written)
        yield _gauge("pending", "Records waiting for the sink", ing.batcher.pending)
        up = GaugeMetricFamily(PREFIX + "connection_up", "1 while a stream connection is open",
                               labels=["connection"])
        for i, c in enumerate(conns):
            up.add_metric([str(i)], 1 if c.state.connected else 0)
        yield up
        age = GaugeMetricFamily(PREFIX + "last_event_age_seconds", "Now minus the event time of the last "
                                "record written, per symbol", labels=["symbol"])
        now_ms = time.time() * 1000
        for sym, t in sorted(s.last_event_time.items()):
            age.add_metric([sym], max(0.0, (now_ms - t) / 1000))
        yield age


def render_metrics(ing: Ingestor) -> str:
    """The exposition text a scrape of `/metrics` gets."""
    return generate_latest(ing.registry).decode()
