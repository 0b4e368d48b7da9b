"""AMQP messages as the emulator handles them: split into sections, and built for delivery.

A message is a run of described sections (OASIS AMQP 1.0 part 3, "Messaging"). Incoming events
are split without decoding their bodies; outgoing events get the service's annotations
(`x-opt-sequence-number`, `x-opt-offset`, `x-opt-enqueued-time`, `x-opt-partition-key`) merged
into the producer's own message annotations.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from . import codec
from .codec import DecodeError, Symbol
from .store import IncomingEvent, StoredEvent

HEADER, DELIVERY_ANNOTATIONS, MESSAGE_ANNOTATIONS, PROPERTIES, APP_PROPERTIES = 0x70, 0x71, 0x72, 0x73, 0x74
DATA, AMQP_SEQUENCE, AMQP_VALUE, FOOTER = 0x75, 0x76, 0x77, 0x78
_SECTION_NAMES = {
    "amqp:header:list": HEADER, "amqp:delivery-annotations:map": DELIVERY_ANNOTATIONS,
    "amqp:message-annotations:map": MESSAGE_ANNOTATIONS, "amqp:properties:list": PROPERTIES,
    "amqp:application-properties:map": APP_PROPERTIES, "amqp:data:binary": DATA,
    "amqp:amqp-sequence:list": AMQP_SEQUENCE, "amqp:amqp-value:*": AMQP_VALUE, "amqp:footer:map": FOOTER,
}
BATCH_FORMAT = 0x80013700
PARTITION_KEY = "x-opt-partition-key"
# Annotations the service sets; a producer's own values for them are replaced on delivery.
SERVICE_ANNOTATIONS = frozenset({"x-opt-sequence-number", "x-opt-offset", "x-opt-enqueued-time", PARTITION_KEY})

_I = struct.Struct(">I")
_II = struct.Struct(">II")


class Section(NamedTuple):
    code: int
    start: int
    end: int
    value_start: int


def split_sections(buf: bytes) -> list[Section]:
    """The sections of an encoded message, in order; raises DecodeError on anything else."""
    out = []
    pos, n = 0, len(buf)
    while pos < n:
        if buf[pos] != 0x00:
            raise DecodeError("message section is not a described value")
        desc, p = codec.decode_at(buf, pos + 1)
        code = desc if isinstance(desc, int) else _SECTION_NAMES.get(desc) if isinstance(desc, str) else None
        if code is None or not HEADER <= code <= FOOTER:
            raise DecodeError(f"unknown message section {desc!r}")
        # bodies are jumped over by size; every other section is decoded, so a malformed one is refused
        end = codec.skip_at(buf, p) if code == DATA else codec.check_at(buf, p)
        out.append(Section(code, pos, end, p))
        pos = end
    return out


def map_items(buf: bytes, start: int) -> list[tuple[bytes, bytes, Any]]:
    """(raw key, raw value, decoded key) for each entry of the map encoded at `start`."""
    ctor = buf[start]
    if ctor == 0x40:
        return []
    if ctor == 0xC1:
        count, p = buf[start + 2], start + 3
    elif ctor == 0xD1:
        count, p = _II.unpack_from(buf, start + 1)[1], start + 9
    else:
        raise DecodeError("annotations are not a map")
    out = []
    for _ in range(count // 2):
        key, kend = codec.decode_at(buf, p)
        vend = codec.skip_at(buf, kend)
        out.append((bytes(buf[p:kend]), bytes(buf[kend:vend]), key))
        p = vend
    return out


def parse_event(buf: bytes, default_key: str | None = None) -> tuple[IncomingEvent, list[Section]]:
    """An event from one encoded message (its sections are returned too, for batches and requests)."""
    sections = split_sections(buf)
    header = b""
    ann = bytearray()
    n_ann = 0
    key = default_key
    rest_start = len(buf)
    for s in sections:
        if s.code == HEADER:
            header = bytes(buf[s.start:s.end])
        elif s.code == MESSAGE_ANNOTATIONS:
            for kraw, vraw, k in map_items(buf, s.value_start):
                if k == PARTITION_KEY:
                    v = codec.decode(vraw)
                    if v is not None:
                        key = v if isinstance(v, str) else str(v)
                    continue
                if isinstance(k, str) and k in SERVICE_ANNOTATIONS:
                    continue
                ann += kraw
                ann += vraw
                n_ann += 2
        elif s.code >= PROPERTIES and rest_start == len(buf):
            rest_start = s.start
    return IncomingEvent(key, header, bytes(ann), n_ann, bytes(buf[rest_start:])), sections


def parse_batch(buf: bytes) -> tuple[str | None, list[IncomingEvent]]:
    """A batch message (format 0x80013700): each data section of the envelope is one event."""
    outer, sections = parse_event(buf)
    events = []
    for s in sections:
        if s.code == DATA:
            ctor = buf[s.value_start]
            if ctor == 0xA0:
                inner = buf[s.value_start + 2:s.end]
            elif ctor == 0xB0:
                inner = buf[s.value_start + 5:s.end]
            else:
                raise DecodeError("batch data section is not binary")
            ev, _ = parse_event(inner, outer.partition_key)
            events.append(ev)
    return outer.partition_key, events


_K_SEQ = codec.encode(Symbol("x-opt-sequence-number"))
_K_OFF = codec.encode(Symbol("x-opt-offset"))
_K_TIME = codec.encode(Symbol("x-opt-enqueued-time"))
_K_KEY = codec.encode(Symbol(PARTITION_KEY))
_q = struct.Struct(">q")


_K_LAST_SEQ = codec.encode(Symbol("last_enqueued_sequence_number"))
_K_LAST_OFF = codec.encode(Symbol("last_enqueued_offset"))
_K_LAST_TIME = codec.encode(Symbol("last_enqueued_time_utc"))
_K_RETRIEVED = codec.encode(Symbol("runtime_info_retrieval_time_utc"))


def runtime_annotations(last_seq: int, last_offset: int, last_ms: int, now_ms: int) -> bytes:
    """The delivery-annotations section a receiver with `com.microsoft:enable-receiver-runtime-metric`
    gets on each event: where its partition ends (the SDK's `last_enqueued_event_properties`)."""
    body = bytearray(_K_LAST_SEQ)
    body.append(0x81)
    body += _q.pack(last_seq)
    body += _K_LAST_OFF
    codec.encode_into(body, str(last_offset))
    body += _K_LAST_TIME
    body.append(0x83)
    body += _q.pack(last_ms)
    body += _K_RETRIEVED
    body.append(0x83)
    body += _q.pack(now_ms)
    return bytes((0x00, 0x53, DELIVERY_ANNOTATIONS, 0xC1, len(body) + 1, 8)) + bytes(body)


def delivery_payload(ev: StoredEvent, delivery_annotations: bytes = b"") -> bytes:
    """The message a consumer receives: the producer's sections with the service annotations."""
    body = bytearray(_K_SEQ)
    body.append(0x81)
    body += _q.pack(ev.sequence_number)
    body += _K_OFF
    off = str(ev.offset).encode()
    body.append(0xA1)
    body.append(len(off))
    body += off
    body += _K_TIME
    body.append(0x83)
    body += _q.pack(ev.enqueued_ms)
    count = 6 + ev.n_annotations
    if ev.partition_key is not None:
        body += _K_KEY
        codec.encode_into(body, ev.partition_key)
        count += 2
    body += ev.annotations
    if len(body) + 1 < 256:
        head = bytes((0x00, 0x53, MESSAGE_ANNOTATIONS, 0xC1, len(body) + 1, count))
    else:
        head = bytes((0x00, 0x53, MESSAGE_ANNOTATIONS, 0xD1)) + _II.pack(len(body) + 4, count)
    return b"".join((ev.header, delivery_annotations, head, body, ev.rest))


class Request(NamedTuple):
    """A `$cbs` or `$management` request: what the server reads of it."""

    message_id: Any
    reply_to: str | None
    app: dict[Any, Any]
    body: Any


def parse_request(buf: bytes) -> Request:
    sections = split_sections(buf)
    message_id = None
    reply_to = None
    app: dict[Any, Any] = {}
    body = None
    for s in sections:
        value = codec.decode_at(buf, s.value_start)[0]
        if s.code == PROPERTIES and isinstance(value, list):
            message_id = value[0] if value else None
            reply_to = value[4] if len(value) > 4 else None
        elif s.code == APP_PROPERTIES and isinstance(value, dict):
            app = value
        elif s.code == AMQP_VALUE:
            body = value
    return Request(message_id, reply_to if isinstance(reply_to, str) else None, app, body)


def response(correlation_id: Any, status: int, description: str, body: Any = None) -> bytes:
    """A management or CBS response: correlation id, status-code and status-description, optional value."""
    props = [None, None, None, None, None, correlation_id, None, None, None, None, None, None, None]
    out = bytearray(codec.encode(codec.Described(codec.ULong(PROPERTIES), props)))
    out += codec.encode(codec.Described(codec.ULong(APP_PROPERTIES),
                                        {"status-code": status,
                                         "status-description": description}))
    if body is not None:
        out += codec.encode(codec.Described(codec.ULong(AMQP_VALUE), body))
    return bytes(out)
