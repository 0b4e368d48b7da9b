"""The ingestor's Prometheus metrics, rendered from its live counters on each scrape."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.adapters.ops_http import Family, Histogram, render

if TYPE_CHECKING:
    from .ingestor import Ingestor

PREFIX = "marketflow_ingest_"


def render_metrics(ing: Ingestor) -> str:
    s = ing.stats
    conns = ing.connections

    def counter(name: str, help: str, value: float) -> Family:
        return Family(PREFIX + name, "counter", help, [({}, value)])

    def gauge(name: str, help: str, value: float) -> Family:
        return Family(PREFIX + name, "gauge", help, [({}, value)])

    now_ms = time.time() * 1000
    parts: list[Family | Histogram] = [
        Family(PREFIX + "messages_total", "counter", "Market records received per stream",
               [({"stream": name}, n) for name, n in sorted(s.messages.items())]),
        counter("open_kline_updates_total", "Non-final kline updates (not published)", s.open_updates),
        counter("reconnects_total", "Stream reconnects (any reason)", ing.reconnects),
        counter("stale_reconnects_total", "Reconnects because a stream was silent past the stale timeout",
                sum(c.state.stale_reconnects for c in conns)),
        counter("rotations_total", "Connections rotated before Binance's 24-hour cut",
                sum(c.state.rotations for c in conns)),
        counter("gaps_found_total", "Gaps in kline open times or trade ids", s.gaps),
        counter("gaps_unfilled_total", "Gaps REST could not fill completely", s.gaps_unfilled),
        Family(PREFIX + "backfilled_total", "counter", "Records backfilled over REST",
               [({"kind": "kline"}, s.bars_backfilled), ({"kind": "trade"}, s.trades_backfilled)]),
        counter("duplicates_dropped_total", "Records at or below the last one written for their stream",
                s.duplicates),
        counter("malformed_total", "Malformed messages kept (dead-lettered), never published", s.malformed),
        counter("queue_overflows_total", "Times the pending queue was full and the stream waited",
                ing.batcher.overflows),
        counter("write_failures_total", "Failed batch writes (retried)", ing.batcher.write_failures),
        counter("published_total", "Records written to the sink", ing.batcher.written),
        gauge("pending", "Records waiting for the sink", ing.batcher.pending),
        Family(PREFIX + "connection_up", "gauge", "1 while a stream connection is open",
               [({"connection": str(i)}, 1 if c.state.connected else 0) for i, c in enumerate(conns)]),
        Family(PREFIX + "last_event_age_seconds", "gauge", "Now minus the event time of the last record "
               "written, per symbol", [({"symbol": sym}, max(0.0, (now_ms - t) / 1000))
                                      for sym, t in sorted(s.last_event_time.items())]),
        ing.publish_latency,
    ]
    return render(parts)
