"""W3C trace context in Event Hubs application properties: one trace from a kline to its fill.

Every producer writes `traceparent` (and `tracestate` when there is one) into the properties of
what it publishes; every consumer continues the trace from them: the Functions read each
event's properties from the trigger metadata's `PropertiesArray`, the executor from the SDK's
`EventData.properties`. Only OpenTelemetry's public propagator API is used (the W3C
`TraceContextTextMapPropagator`, not the global one, so a configured baggage propagator can
never copy baggage onto the hubs), over plain property dicts whose keys and values may arrive
as bytes (the AMQP SDK hands them over that way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_KEYS = (TRACEPARENT, TRACESTATE)

_PROPAGATOR = TraceContextTextMapPropagator()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)


class PropertiesGetter(Getter[Mapping[Any, Any]]):
    """Reads a property whose key and value may be `str` or `bytes`."""

    def get(self, carrier: Mapping[Any, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            value = carrier.get(key.encode())
        return None if value is None else [_text(value)]

    def keys(self, carrier: Mapping[Any, Any]) -> list[str]:
        return [_text(k) for k in carrier]


class PropertiesSetter(Setter[MutableMapping[str, str]]):
    def set(self, carrier: MutableMapping[str, str], key: str, value: str) -> None:
        carrier[key] = value


GETTER = PropertiesGetter()
SETTER = PropertiesSetter()


def extract(properties: Mapping[Any, Any]) -> Context:
    """The context an event's properties carry (an empty one when they carry none or a bad one)."""
    return _PROPAGATOR.extract(properties, getter=GETTER)


def incoming(properties: Mapping[Any, Any]) -> SpanContext | None:
    """The remote span context of an event's `traceparent`, None when absent or invalid."""
    ctx = trace.get_current_span(extract(properties)).get_span_context()
    return ctx if ctx.is_valid else None


def properties_of(span_context: SpanContext | None = None) -> dict[str, str]:
    """`traceparent`/`tracestate` for `span_context` (default: the current span); empty when
    there is no valid span (nothing to continue)."""
    ctx = trace.get_current_span().get_span_context() if span_context is None else span_context
    if not ctx.is_valid:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(ctx)), setter=SETTER)
    return carrier


def with_current_trace(properties: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """`properties` plus the current span's trace context, unless they already carry one (a
    consumer's outputs carry the context of the event they came from)."""
    if properties and TRACEPARENT in properties:
        return properties
    trace_props = properties_of()
    if not trace_props:
        return properties
    return {**(properties or {}), **trace_props}


def without_trace(properties: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy without trace context (a replay starts new traces instead of old captured ones)."""
    drop: Iterable[Any] = (*TRACE_KEYS, *(k.encode() for k in TRACE_KEYS))
    return {k: v for k, v in properties.items() if k not in set(drop)}


def new_trace(tracer: trace.Tracer, name: str, attributes: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Start (and end) a PRODUCER span that roots a new trace, and return its properties: for a
    producer that has no incoming context (a replay re-sending history: each event becomes a new
    decision, not a part of the trace it was captured in)."""
    with tracer.start_as_current_span(name, context=Context(), kind=trace.SpanKind.PRODUCER,
                                      attributes=dict(attributes or {})) as span:
        return properties_of(span.get_span_context())
