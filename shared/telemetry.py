"""OpenTelemetry traces and metrics for every MarketFlow process, set up once.

Who exports, one rule (`exporter_for`), so nothing is exported twice:

* `functions_worker`: in the Functions process (`FUNCTIONS_WORKER_RUNTIME=python`) with
  `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`, the Python worker itself calls the Azure
  Monitor distro's `configure_azure_monitor` at its init, before it imports the app (host.json
  `"telemetryMode": "OpenTelemetry"` makes the host export OpenTelemetry too). We then never call
  it again: our meters and tracer come from the global providers the worker set.
* `azure_monitor`: anywhere else with `APPLICATIONINSIGHTS_CONNECTION_STRING` set (a Key Vault
  reference in the app settings): we configure the distro, once.
* `none`: locally, nothing is exported (no collector is needed to run or test anything).

The connection string is handed to the distro and never logged or echoed.

The counters are the pipeline's business metrics. Handlers and replay keep plain ints or lists on
their hot paths and hand them over in bulk (`Metrics.add_many`, `Metrics.record_outputs`): one
OTel call per distinct attribute set, not one per event, which a replay of millions of bars
could not afford.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from shared.events import Event, ExecutionReport, RiskDecision, Signal
from shared.portfolio import AccountSnapshot

log = logging.getLogger(__name__)

INSTRUMENTATION_NAME = "marketflow"
APPINSIGHTS_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
SERVICE_NAME_SETTING = "OTEL_SERVICE_NAME"
DEFAULT_SERVICE_NAME = "marketflow"

EVENTS = "marketflow.events"
SIGNALS = "marketflow.signals"
DECISIONS = "marketflow.decisions"
FILLS = "marketflow.fills"
DEAD_LETTERS = "marketflow.dead_letters"
HANDLER_ERRORS = "marketflow.handler_errors"
TRADING_STATE = "marketflow.trading_state"
BATCH_DURATION = "marketflow.batch_duration"
EVENT_AGE = "marketflow.event_age"
EQUITY = "marketflow.equity"
DAILY_PNL = "marketflow.daily_pnl"
DRAWDOWN = "marketflow.drawdown"
DAILY_LOSS_USED = "marketflow.daily_loss_used_pct"
EXPOSURE = "marketflow.exposure"
WORKER_RUNTIME_SETTING = "FUNCTIONS_WORKER_RUNTIME"
WORKER_TELEMETRY_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
Exporter = Literal["none", "azure_monitor", "functions_worker"]

# Histograms of every consumer (shared.adapters.processing.BatchProcessor), in seconds, with the
# attributes `hub`, `consumer` (consumer group), `function` (the Function's name, or the
# executor's consumer) and `partition` (partition id, "none" when the transport gave none);
# batch durations also carry `outcome` (ok, or retry when the batch raised to be retried).
# event_age is the lag figure the consumer-lag alert watches (max over 5 minutes).
HISTOGRAMS: dict[str, tuple[str, str, tuple[float, ...]]] = {
    BATCH_DURATION: ("s", "time to process one batch, by hub, consumer, function, partition and outcome",
                     (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)),
    EVENT_AGE: ("s", "event age when handled (enqueued time to handled), by hub, consumer, function and partition",
                (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)),
}

COUNTERS: dict[str, tuple[str, str]] = {
    EVENTS: ("{event}", "events consumed, by hub, consumer and outcome (ok, duplicate, dead_letter)"),
    SIGNALS: ("{signal}", "strategy signals emitted, by strategy and side"),
    DECISIONS: ("{decision}", "risk decisions, by layer, status and (first) reason code"),
    FILLS: ("{fill}", "fills booked, by side and venue"),
    DEAD_LETTERS: ("{event}", "events dead-lettered, by hub, consumer, error type and reason code"),
    HANDLER_ERRORS: ("{event}", "unexpected handler exceptions (bugs), dead-lettered as HANDLER_ERROR; alert on > 0"),
}

# The account `positions` writes, set after each committed batch (fills and marks), for the
# workbook's account panel and the Functions' daily-loss alert. Money in the book's quote asset.
# daily_loss_used_pct is the executor's daily_loss_limit_used in percent (an integer threshold
# for the alert: Bicep has no decimal literals). exposure is per symbol (mark x quantity; 0 once
# a position closes): its cardinality is the traded symbols'.
GAUGES: dict[str, tuple[str, str]] = {
    EQUITY: ("{quote}", "account equity: cash plus positions at their marks"),
    DAILY_PNL: ("{quote}", "equity change since the UTC day's start (realized and unrealized)"),
    DRAWDOWN: ("%", "equity below its peak, percent of the peak"),
    DAILY_LOSS_USED: ("%", "today's loss as a percent of the tighter daily loss limit (100: REDUCING)"),
    EXPOSURE: ("{quote}", "position value at its mark, by symbol"),
}

Attributes = Mapping[str, str]
_AttrKey = tuple[tuple[str, str], ...]


def _key(attributes: Attributes | None) -> _AttrKey:
    return tuple(sorted(attributes.items())) if attributes else ()


def signal_attributes(signal: Signal) -> dict[str, str]:
    return {"strategy": signal.strategy, "side": signal.side.value}


def decision_attributes(decision: RiskDecision) -> dict[str, str]:
    """Status and the first reason code ("none" when approved unchanged): bounded cardinality."""
    return {"layer": str(decision.layer), "status": decision.status.value,
            "reason": decision.reasons[0] if decision.reasons else "none"}


def fill_attributes(report: ExecutionReport) -> dict[str, str]:
    return {"side": report.side.value, "venue": report.venue}



class Metrics:
    """The MarketFlow counters, the trading-state and account gauges and the histograms on one meter."""

    def __init__(self, meter: Meter) -> None:
        self._counters = {name: meter.create_counter(name, unit=unit, description=desc)
                          for name, (unit, desc) in COUNTERS.items()}
        self._gauges = {name: meter.create_gauge(name, unit=unit, description=desc)
                        for name, (unit, desc) in GAUGES.items()}
        self._exposed: set[str] = set()
        self._state = meter.create_gauge(
            TRADING_STATE, unit="{level}",
            description="risk trading state: 0 ACTIVE, 1 REDUCING, 2 HALTED, by state and lock source")
        self._histograms = {name: meter.create_histogram(name, unit=unit, description=desc,
                                                         explicit_bucket_boundaries_advisory=list(bounds))
                            for name, (unit, desc, bounds) in HISTOGRAMS.items()}

    def record_batch(self, seconds: float, attributes: Attributes) -> None:
        """One batch's processing time (`BATCH_DURATION`)."""
        self._histograms[BATCH_DURATION].record(max(seconds, 0.0), attributes=dict(attributes))

    def record_event_ages(self, ages_s: Iterable[float], attributes: Attributes) -> None:
        """The age of each handled event of one batch (`EVENT_AGE`); clock skew is clamped to 0."""
        histogram, attrs = self._histograms[EVENT_AGE], dict(attributes)
        for age in ages_s:
            histogram.record(max(age, 0.0), attributes=attrs)

    def set_trading_state(self, level: int, state: str, source: str = "none") -> None:
        """Record the risk engine's effective trading state (alert on level > 0)."""
        self._state.set(level, attributes={"state": state, "source": source})

    def record_account(self, account: AccountSnapshot, daily_loss_used: float | None) -> None:
        """The account gauges (`GAUGES`) from one snapshot; `daily_loss_used` is
        shared.risk.checks.daily_loss_used (a share), None when the risk settings are unreadable."""
        gauges = self._gauges
        gauges[EQUITY].set(account.equity)
        gauges[DAILY_PNL].set(account.equity - account.day_start_equity)
        peak = account.peak_equity
        gauges[DRAWDOWN].set(max(peak - account.equity, 0.0) / peak * 100.0 if peak > 0 else 0.0)
        if daily_loss_used is not None:
            gauges[DAILY_LOSS_USED].set(daily_loss_used * 100.0)
        held = {symbol for symbol, (qty, _, _) in account.positions.items() if qty}
        for symbol in sorted(held | self._exposed):
            qty, _, mark = account.positions.get(symbol, (0.0, 0.0, 0.0))
            gauges[EXPOSURE].set(qty * mark, attributes={"symbol": symbol})
        self._exposed = held

    def record_approvals(self, layer1: int, layer2: int) -> None:
        """Plain approvals (`RiskEngine.take_approvals`): they are counted, not emitted as events,
        so they reach the decisions metric here; rejections and reductions come as events."""
        for layer, n in (("1", layer1), ("2", layer2)):
            self.add(DECISIONS, n, {"layer": layer, "status": "APPROVED", "reason": "none"})

    def record_risk(self, counters: Mapping[str, Any]) -> None:
        """Record `RiskEngine.counters()`: the trading state gauge (decisions count elsewhere)."""
        locks = counters.get("locks") or []
        self.set_trading_state(int(counters["trading_state_level"]), str(counters["trading_state"]),
                               str(locks[0]) if locks else "none")

    def add(self, name: str, value: int = 1, attributes: Attributes | None = None) -> None:
        """Add to one counter; unknown names fail loudly (a typo must not vanish into a new metric)."""
        if value < 0:
            raise ValueError(f"counter {name} cannot go down ({value})")
        counter = self._counters.get(name)
        if counter is None:
            raise KeyError(f"unknown metric {name!r}; known: {sorted(self._counters)}")
        if value:
            counter.add(value, attributes=dict(attributes) if attributes else None)

    def add_many(self, counts: Iterable[tuple[str, int, Attributes | None]]) -> None:
        """Bulk form: (metric, value, attributes) triples, summed per attribute set first."""
        totals: Counter[tuple[str, _AttrKey]] = Counter()
        for name, value, attributes in counts:
            totals[(name, _key(attributes))] += value
        for (name, attrs), value in totals.items():
            self.add(name, value, dict(attrs))

    def record_outputs(self, events: Iterable[Event]) -> None:
        """Count signals, decisions and fills among `events` (any mix), aggregated before recording."""
        signals: list[Signal] = []
        decisions: list[RiskDecision] = []
        reports: list[ExecutionReport] = []
        for event in events:
            if isinstance(event, Signal):
                signals.append(event)
            elif isinstance(event, RiskDecision):
                decisions.append(event)
            elif isinstance(event, ExecutionReport):
                reports.append(event)
        self.record_signals(signals)
        self.record_decisions(decisions)
        self.record_fills(reports)

    # Each groups its events by a plain key (C-level where it can) and builds the attribute dict
    # once per group, from one of its events: a replay's tens of thousands of outputs cost about a
    # millisecond.
    def record_signals(self, signals: Sequence[Signal]) -> None:
        self._record_groups(SIGNALS, Counter(map(_SIGNAL_KEY, signals)), signals, _SIGNAL_KEY,
                            signal_attributes)

    def record_decisions(self, decisions: Sequence[RiskDecision]) -> None:
        self._record_groups(DECISIONS, Counter(map(_decision_key, decisions)), decisions, _decision_key,
                            decision_attributes)

    def record_fills(self, reports: Sequence[ExecutionReport]) -> None:
        filled = [r for r in reports if r.fills]
        counts = Counter(map(_FILL_KEY, filled))  # one per report, then the further fills of some
        for report in filled:
            if len(report.fills) > 1:
                counts[_FILL_KEY(report)] += len(report.fills) - 1
        self._record_groups(FILLS, counts, filled, _FILL_KEY, fill_attributes)

    def _record_groups(self, name: str, counts: Counter[Any], events: Sequence[Any], key: Callable[[Any], Any],
                       attributes: Callable[[Any], dict[str, str]]) -> None:
        if not counts:
            return
        one_of = dict(zip(map(key, events), events, strict=True))
        for group, value in counts.items():
            self.add(name, value, attributes(one_of[group]))


_SIGNAL_KEY = attrgetter("strategy", "side")
_FILL_KEY = attrgetter("side", "venue")


def _decision_key(d: RiskDecision) -> tuple[Any, ...]:
    return d.layer, d.status, d.reasons[0] if d.reasons else ""


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What `setup` built for this process."""

    exporter: Exporter
    service_name: str
    meter_provider: Any
    tracer_provider: Any
    metrics: Metrics

    def tracer(self) -> trace.Tracer:
        tracer: trace.Tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_NAME)
        return tracer


_lock = threading.Lock()
_state: Telemetry | None = None
_globals_set = False


def _configure_azure_monitor(**kwargs: Any) -> None:
    """Indirection so tests can observe the call without exporting anything."""
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(**kwargs)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def exporter_for(env: Mapping[str, str]) -> Exporter:
    """Who exports this process's telemetry (see the module docstring)."""
    if env.get(WORKER_RUNTIME_SETTING, "").strip().lower() == "python" and _true(env.get(WORKER_TELEMETRY_SETTING)):
        return "functions_worker"
    return "azure_monitor" if env.get(APPINSIGHTS_SETTING, "").strip() else "none"


def setup(*, service_name: str | None = None, metric_readers: Sequence[MetricReader] = (),
          environ: Mapping[str, str] | None = None) -> Telemetry:
    """Set up traces and metrics once per process; later calls return the first setup.

    `metric_readers` adds readers (an InMemoryMetricReader in tests) next to any exporter.
    """
    global _state, _globals_set
    with _lock:
        if _state is not None:
            return _state
        env = os.environ if environ is None else environ
        name = service_name or env.get(SERVICE_NAME_SETTING) or DEFAULT_SERVICE_NAME
        resource = Resource.create({SERVICE_NAME: name})
        exporter = exporter_for(env)
        if exporter == "functions_worker":
            # The worker configured the distro before importing us; configuring it again would
            # add a second exporter pipeline (every span and metric sent twice).
            meter_provider: Any = otel_metrics.get_meter_provider()
            tracer_provider: Any = trace.get_tracer_provider()
            if metric_readers:
                log.warning("telemetry: metric readers ignored, the Functions worker owns the meter provider")
        elif exporter == "azure_monitor":
            connection_string = env.get(APPINSIGHTS_SETTING, "").strip()
            # logger_name: the distro exports only the "marketflow" logger's records; module logs
            # already reach Application Insights through the Functions host, and must not twice.
            _configure_azure_monitor(connection_string=connection_string, resource=resource,
                                     metric_readers=list(metric_readers), logger_name=INSTRUMENTATION_NAME)
            meter_provider = otel_metrics.get_meter_provider()
            tracer_provider = trace.get_tracer_provider()
        else:
            meter_provider = MeterProvider(resource=resource, metric_readers=list(metric_readers))
            tracer_provider = TracerProvider(resource=resource)
            if not _globals_set:
                otel_metrics.set_meter_provider(meter_provider)
                trace.set_tracer_provider(tracer_provider)
                _globals_set = True
        metrics = Metrics(meter_provider.get_meter(INSTRUMENTATION_NAME))
        _state = Telemetry(exporter=exporter, service_name=name, meter_provider=meter_provider,
                           tracer_provider=tracer_provider, metrics=metrics)
        log.info("telemetry set up: service=%s exporter=%s", name, exporter)
        return _state


def get() -> Telemetry:
    """The process telemetry, set up from the environment on first use."""
    state = _state
    return state if state is not None else setup()


def metrics() -> Metrics:
    return get().metrics


def tracer() -> trace.Tracer:
    return get().tracer()


def collect_counts(reader: MetricReader) -> dict[tuple[str, frozenset[tuple[str, Any]]], int]:
    """Current totals of a pull reader (e.g. InMemoryMetricReader): {(metric, attributes): value},
    for the counters and gauges (histograms are skipped).

    For tests and end-of-run summaries; counters are cumulative, so these are totals so far.
    """
    data = reader.get_metrics_data()  # type: ignore[attr-defined]
    out: dict[tuple[str, frozenset[tuple[str, Any]]], int] = {}
    if data is None:
        return out
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        continue  # a histogram: not a count (read its points directly)
                    key = (metric.name, frozenset((point.attributes or {}).items()))
                    out[key] = out.get(key, 0) + int(value)
    return out


def total(counts: Mapping[tuple[str, frozenset[tuple[str, Any]]], int], metric: str,
          **attributes: str) -> int:
    """Sum of `metric` over the data points whose attributes include `attributes`."""
    want = set(attributes.items())
    return sum(v for (name, attrs), v in counts.items() if name == metric and want <= attrs)


def reset_for_tests() -> None:
    """Forget this process's setup so a test can set up again with its own reader.

    OpenTelemetry's global providers can only be set once per process; the local setup does not
    depend on them (Metrics uses its own provider), so a second local setup works.
    """
    global _state
    with _lock:
        _state = None
