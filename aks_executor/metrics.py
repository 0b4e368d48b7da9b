"""The executor's Prometheus metrics, served at `/metrics` (text exposition format).

Each `ExecutorMetrics` has its own registry (several in one test process never clash). Label
values are bounded sets (order outcomes, Binance error codes, hub names, three trading states),
so the series count cannot grow without bound. No label or value ever holds a secret, an id or
free text.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shared.risk.states import TradingState

PREFIX = "marketflow_executor"
# Intent received to final venue answer parsed: from sub-millisecond (paper) to seconds (a retried send).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ExecutorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders = Counter(f"{PREFIX}_orders", "Orders by outcome: the final or last known status an intent "
                              "reached (FILLED, CANCELED, REJECTED, EXPIRED, NEW, UNKNOWN), RISK_REJECTED at the "
                              "last look, DUPLICATE for a redelivered intent", ["outcome"], registry=r)
        self.exchange_errors = Counter(f"{PREFIX}_exchange_errors", "Error responses from the venue, by Binance "
                                       "error code (or HTTP status when there is no code)", ["code"], registry=r)
        self.order_latency = Histogram(f"{PREFIX}_order_latency_seconds", "Intent received to the venue's answer "
                                       "parsed", buckets=LATENCY_BUCKETS, registry=r)
        self.weight_used = Gauge(f"{PREFIX}_weight_used", "Binance request weight used in the current minute "
                                 "(X-MBX-USED-WEIGHT-1M of the last response)", registry=r)
        self.trading_state = Enum(f"{PREFIX}_trading_state", "The risk engine's trading state",
                                  states=[s.value for s in TradingState], registry=r)
        self.lease_held = Gauge(f"{PREFIX}_lease_held", "1 while this replica holds the single-writer lease",
                                registry=r)
        self.lease_epoch = Gauge(f"{PREFIX}_lease_epoch", "Epoch of the lease last acquired (the consumers' "
                                 "owner_level)", registry=r)
        self.partitions = Gauge(f"{PREFIX}_consumer_partitions", "Partitions this replica's consumers own, by hub",
                                ["hub"], registry=r)
        self.daily_loss_used = Gauge(f"{PREFIX}_daily_loss_limit_used", "Share of the tighter daily loss limit "
                                     "(risk daily_loss_limit / daily_loss_pct) lost since the UTC day's start: "
                                     "1 sets REDUCING", registry=r)
        self.events = Counter(f"{PREFIX}_events", "Events consumed, by hub and outcome (ok, duplicate, "
                              "dead_letter)", ["hub", "outcome"], registry=r)
        self.trading_state.state(TradingState.ACTIVE.value)
        self.lease_held.set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


WEIGHT_HEADER = "x-mbx-used-weight-1m"


def venue_hooks(metrics: ExecutorMetrics) -> dict[str, Any]:
    """`on_error` / `on_exchange` hooks for `BinanceRest`: errors by code, weight used per response."""

    def on_error(err: Any) -> None:
        code = err.code if err.code is not None else err.http_status
        metrics.exchange_errors.labels(str(code) if code is not None else "transport").inc()

    def on_exchange(_endpoint: str, exchange: Any) -> None:
        headers = exchange.headers or {}
        for name, value in headers.items():
            if name.lower() == WEIGHT_HEADER:
                with contextlib.suppress(ValueError):
                    metrics.weight_used.set(float(value))
                return

    return {"on_error": on_error, "on_exchange": on_exchange}
