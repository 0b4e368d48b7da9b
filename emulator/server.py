"""The AMQP 1.0 server: connections, sessions and links as the azure-eventhub SDK uses them.

One asyncio Protocol per connection parses frames as they arrive and answers synchronously; a
consumer link is pumped whenever it gains credit or its partition grows. What it implements:
SASL (MSSBCBS, PLAIN, ANONYMOUS, EXTERNAL), `$cbs` put-token (SAS tokens are verified against the
namespace key; JWTs are accepted), `$management` READ of hub and partition properties, sending
to a hub (partition-key routing or round robin), to `<hub>/Partitions/<id>`, batches (message
format 0x80013700), receiving from `<hub>/ConsumerGroups/<group>/Partitions/<id>` with the
`apache.org:selector-filter:string` start positions, owner level (`com.microsoft:epoch`) and link
credit. Any malformed frame or protocol violation closes that one connection with an AMQP error.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlparse

from . import codec, messages
from .codec import Array, DecodeError, Described, Symbol, UByte, UInt, ULong, UShort
from .store import Hub, Namespace, Partition, StoredEvent

log = logging.getLogger("emulator.server")

SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
OPEN, BEGIN, ATTACH, FLOW, TRANSFER, DISPOSITION, DETACH, END, CLOSE = range(0x10, 0x19)
ERROR = 0x1D
SOURCE, TARGET = 0x28, 0x29
ACCEPTED, REJECTED = 0x24, 0x25
SASL_MECHANISMS, SASL_INIT, SASL_OUTCOME = 0x40, 0x41, 0x44
_PERFORMATIVE_NAMES = {"amqp:open:list": OPEN, "amqp:begin:list": BEGIN, "amqp:attach:list": ATTACH,
                       "amqp:flow:list": FLOW, "amqp:transfer:list": TRANSFER, "amqp:disposition:list": DISPOSITION,
                       "amqp:detach:list": DETACH, "amqp:end:list": END, "amqp:close:list": CLOSE,
                       "amqp:sasl-init:list": SASL_INIT}
_FIELDS = {OPEN: 10, BEGIN: 8, ATTACH: 14, FLOW: 11, TRANSFER: 11, DISPOSITION: 6, DETACH: 3, END: 1, CLOSE: 1,
           SASL_INIT: 3}
SELECTOR = "apache.org:selector-filter:string"
SELECTOR_CODE = 0x0000468C00000004
EPOCH = "com.microsoft:epoch"
RUNTIME_METRIC = "com.microsoft:enable-receiver-runtime-metric"
MAX_MESSAGE_SIZE = 1024 * 1024
MAX_READERS = 5  # non-epoch readers per partition per consumer group, as in Event Hubs
INCOMING_WINDOW = 0x7FFFFFFF
LINK_CREDIT = 1000
MECHANISMS = ("MSSBCBS", "PLAIN", "ANONYMOUS", "EXTERNAL")
_SELECTOR_RE = re.compile(r"^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*"
                          r"(>=|>)\s*'([^']*)'\s*$")
_I = struct.Struct(">I")
_H = struct.Struct(">H")
# transfer performative: descriptor 0x14, list8 of 25 bytes and 11 fields, handle as uint (0x70)
_TRANSFER_HEAD = b"\x00\x53\x14\xc0\x19\x0b\x70"
_NOT_MORE = b"\x42\x40\x40\x40\x40\x40"  # more=false, then rcv-settle-mode..batchable null
_MORE = b"\x41\x40\x40\x40\x40\x40"
FLUSH_BYTES = 256 * 1024
LINGER_SECONDS = 5.0


class AmqpError(Exception):
    """A protocol error that ends the connection (or, with `link`, one link) with an AMQP error."""

    def __init__(self, condition: str, description: str) -> None:
        super().__init__(f"{condition}: {description}")
        self.condition = condition
        self.description = description


def amqp_error(condition: str, description: str) -> Described:
    return Described(ULong(ERROR), [Symbol(condition), description, None])


def frame(channel: int, body: bytes, ftype: int = 0) -> bytes:
    return _I.pack(8 + len(body)) + bytes((2, ftype)) + _H.pack(channel) + body


def performative(code: int, fields: list[Any]) -> bytes:
    return codec.described_list(code, fields)


def _fields(value: Any) -> tuple[int, list[Any]]:
    """(code, fields padded to full length) of a decoded performative."""
    if not isinstance(value, Described) or not isinstance(value.value, list):
        raise AmqpError("amqp:decode-error", "frame body is not a described list")
    d = value.descriptor
    code = d if isinstance(d, int) else _PERFORMATIVE_NAMES.get(d) if isinstance(d, str) else None
    if code not in _FIELDS:
        raise AmqpError("amqp:not-implemented", f"unknown performative {d!r}")
    fields = value.value
    n = _FIELDS[code]
    if len(fields) > n:
        raise AmqpError("amqp:decode-error", f"performative 0x{code:02x} has {len(fields)} fields")
    return code, fields + [None] * (n - len(fields))


def _uint(v: Any, name: str, default: int | None = None) -> int:
    if v is None and default is not None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > 0xFFFFFFFF:
        raise AmqpError("amqp:invalid-field", f"{name} must be a uint")
    return v


def entity_path(address: Any) -> str:
    """`amqps://host/hub/Partitions/0` -> `hub/Partitions/0`; bare paths pass through."""
    if not isinstance(address, str):
        return ""
    if "://" in address:
        address = urlparse(address).path
    return address.strip("/")


def verify_sas(token: str, key_name: str, key: str, now: float | None = None) -> str | None:
    """None if `token` is a valid, unexpired SAS token signed with the namespace key; else why not."""
    if not token.startswith("SharedAccessSignature "):
        return "not a SharedAccessSignature token"
    q = parse_qs(token[len("SharedAccessSignature "):])
    try:
        sr, sig, se = q["sr"][0], q["sig"][0], q["se"][0]
    except (KeyError, IndexError):
        return "token lacks sr, sig or se"
    skn = q.get("skn", [""])[0]
    if skn != key_name:
        return f"unknown key name {skn!r}"
    expected = base64.b64encode(hmac.new(key.encode(), f"{quote_plus(sr)}\n{se}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.decode(), sig):
        return "bad signature"
    try:
        if int(se) < (time.time() if now is None else now):
            return "token expired"
    except ValueError:
        return "bad expiry"
    return None


# ---------------------------------------------------------------------------------------------


class Link:
    """One attached link; `sending` is the server's role (True: the server sends, the client receives)."""

    def __init__(self, session: Session, name: str, handle: int, sending: bool, source: Any, target: Any,
                 snd_settle_mode: int) -> None:
        self.session = session
        self.name = name
        self.handle = handle          # the client's handle; the server uses the same number for its end
        self.sending = sending
        self.source = source
        self.target = target
        self.settled = snd_settle_mode != 0
        self.delivery_count = 0
        self.credit = 0
        self.detached = False
        self.incoming = bytearray()   # payload of a multi-frame transfer in progress
        self.incoming_format = 0
        self.incoming_settled = False
        self.incoming_id = 0

    def on_credit(self) -> None:
        """The client granted credit (a sending link sends what it can)."""

    def on_message(self, payload: bytes, message_format: int) -> tuple[bool, Any]:
        """An incoming message: (accepted, error)."""
        return False, amqp_error("amqp:not-allowed", "this link does not accept messages")

    def closed(self) -> None:
        """The link is going away (detach, end, close, connection lost)."""


class ReplyLink(Link):
    """The client's receiver for `$cbs` or `$management` responses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: list[bytes] = []

    def reply(self, payload: bytes) -> None:
        self.queue.append(payload)
        self.on_credit()

    def on_credit(self) -> None:
        while self.queue and self.credit > 0 and not self.detached:
            self.session.send_message(self, self.queue.pop(0))


class RequestLink(Link):
    """The client's sender of `$cbs` or `$management` requests."""

    def __init__(self, node: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node = node

    def on_message(self, payload: bytes, message_format: int) -> tuple[bool, Any]:
        req = messages.parse_request(payload)
        conn = self.session.conn
        status, desc, body = conn.handle_request(self.node, req)
        reply = conn.find_reply_link(self.node, req.reply_to)
        if reply is None:
            return False, amqp_error("amqp:precondition-failed", f"no receiver attached for {self.node} replies")
        reply.reply(messages.response(req.message_id, status, desc, body))
        return True, None


class PublishLink(Link):
    """A producer: events to a hub (routed by partition key or round robin) or to one partition."""

    def __init__(self, hub: Hub, partition: Partition | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub = hub
        self.partition = partition

    def on_message(self, payload: bytes, message_format: int) -> tuple[bool, Any]:
        if len(payload) > MAX_MESSAGE_SIZE:
            return False, amqp_error("amqp:link:message-size-exceeded",
                                     f"message of {len(payload)} bytes exceeds {MAX_MESSAGE_SIZE}")
        try:
            if message_format == messages.BATCH_FORMAT:
                key, events = messages.parse_batch(payload)
            else:
                ev, _ = messages.parse_event(payload)
                key, events = ev.partition_key, [ev]
        except (DecodeError, IndexError, struct.error) as exc:
            return False, amqp_error("amqp:decode-error", f"malformed message: {exc}")
        if not events:
            return True, None
        target = self.partition
        if target is None:
            if key is not None:
                from .hashing import partition_for_key

                target = self.hub.partitions[partition_for_key(key, len(self.hub.partitions))]
            else:
                target = self.hub.next_round_robin()
        stored = target.append(events)
        self.session.conn.server.on_appended(self.hub, target, stored)
        return True, None


class ConsumeLink(Link):
    """A consumer of one partition in one consumer group, from a start position, with an owner level."""

    def __init__(self, hub: Hub, group: str, partition: Partition, start_seq: int, epoch: int | None,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub = hub
        self.group = group
        self.partition = partition
        self.next_seq = start_seq
        self.epoch = epoch
        self.key = (hub.name.lower(), group.lower(), partition.id)
        self.runtime_metric = False  # the receiver asked for com.microsoft:enable-receiver-runtime-metric
        self._listener: Callable[[], None] = self.on_credit

    def start(self) -> None:
        self.partition.listeners.add(self._listener)

    def on_credit(self) -> None:
        if self.detached or self.session.conn.paused:
            return
        part = self.partition
        if self.next_seq < part.first_seq:
            self.next_seq = part.first_seq  # retention moved past the cursor
        session = self.session
        while self.credit > 0 and self.next_seq < part.next_seq and session.remote_incoming_window > 0:
            ev = part.get(self.next_seq)
            if ev is None:
                break
            self.next_seq += 1
            runtime = b""
            if self.runtime_metric:
                last = part.events[-1]
                runtime = messages.runtime_annotations(last.sequence_number, last.offset, last.enqueued_ms,
                                                       int(time.time() * 1000))
            session.send_message(self, messages.delivery_payload(ev, runtime))
            if session.conn.paused:
                break
        session.conn.flush()

    def closed(self) -> None:
        self.partition.listeners.discard(self._listener)
        self.session.conn.server.readers.get(self.key, set()).discard(self)


class Session:
    def __init__(self, conn: Connection, channel: int, remote_channel: int, next_incoming_id: int,
                 remote_incoming_window: int) -> None:
        self.conn = conn
        self.channel = channel
        self.remote_channel = remote_channel
        self.next_outgoing_id = 0
        self.next_incoming_id = next_incoming_id
        self.remote_incoming_window = remote_incoming_window
        self.links: dict[int, Link] = {}
        self.pending_accepts: list[int] = []

    def send_message(self, link: Link, payload: bytes) -> None:
        """One delivery to the client, split across frames to fit its max frame size. The transfer is
        encoded by hand (every field present, handle and delivery-id as full uints): it is the hot path."""
        conn = self.conn
        delivery_id = self.next_outgoing_id
        self.next_outgoing_id = (delivery_id + 1) & 0xFFFFFFFF
        tag = _I.pack(link.delivery_count & 0xFFFFFFFF)
        link.delivery_count += 1
        link.credit -= 1
        limit = conn.remote_max_frame - 64
        prefix = b"".join((_TRANSFER_HEAD, _I.pack(link.handle), b"\x70", _I.pack(delivery_id), b"\xa0\x04", tag,
                           b"\x43", b"\x41" if link.settled else b"\x42"))
        channel = _H.pack(self.channel)
        if len(payload) <= limit:
            conn.write(b"".join((_I.pack(8 + 30 + len(payload)), b"\x02\x00", channel, prefix, _NOT_MORE, payload)))
            self.remote_incoming_window -= 1
            return
        pos = 0
        while pos < len(payload):
            chunk = payload[pos:pos + limit]
            pos += len(chunk)
            tail = _NOT_MORE if pos >= len(payload) else _MORE
            conn.write(b"".join((_I.pack(8 + 30 + len(chunk)), b"\x02\x00", channel, prefix, tail, chunk)))
            self.remote_incoming_window -= 1

    def flush_accepts(self) -> None:
        """Settle the deliveries accepted while handling one read, as ranges (the SDK sender reads first..last)."""
        ids = self.pending_accepts
        if not ids:
            return
        self.pending_accepts = []
        ids.sort()
        first = last = ids[0]
        ranges = []
        for i in ids[1:]:
            if i == last + 1:
                last = i
            else:
                ranges.append((first, last))
                first = last = i
        ranges.append((first, last))
        accepted = Described(ULong(ACCEPTED), [])
        for a, b in ranges:
            self.conn.write(frame(self.channel, performative(DISPOSITION, [True, UInt(a), UInt(b), True, accepted,
                                                                           None])))

    def flow(self, link: Link | None, *, drain: bool = False, echo: bool = False) -> None:
        fields: list[Any] = [UInt(self.next_incoming_id), UInt(INCOMING_WINDOW), UInt(self.next_outgoing_id),
                             UInt(INCOMING_WINDOW)]
        if link is None:
            fields += [None, None, None, None, None, None, None]
        else:
            fields += [UInt(link.handle), UInt(link.delivery_count & 0xFFFFFFFF), UInt(max(link.credit, 0)),
                       None if not link.sending else UInt(0), drain, echo, None]
        self.conn.write(frame(self.channel, performative(FLOW, fields)))


# ---------------------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.phase = "header"         # header -> sasl -> header -> open -> opened -> closed
        self.sasl_done = False
        self.remote_max_frame = 512
        self.sessions: dict[int, Session] = {}
        self.authorized: set[str] = set()  # audiences with a valid put-token
        self.paused = False
        self.heartbeat: asyncio.TimerHandle | None = None
        self.idle_ms = 0
        self.last_write = 0.0
        self.out: list[bytes] = []
        self.out_size = 0

    # -- transport ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._teardown()

    def eof_received(self) -> bool | None:
        """The client stopped sending: a frame left half-sent is a framing error, said before closing."""
        if self.buf and self.phase not in ("gone", "closed"):
            self.fail("amqp:connection:framing-error", f"connection ended inside a frame ({len(self.buf)} bytes)")
        return None

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for s in list(self.sessions.values()):
            for link in list(s.links.values()):
                if link.sending:
                    link.on_credit()
        self.flush()

    def write(self, data: bytes) -> None:
        """Queue bytes for the socket; `flush` hands them over in one write (one syscall per read handled)."""
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        self.out_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.last_write = time.monotonic()

    def _shutdown(self) -> None:
        """Send what is queued, then stop writing but keep reading (and discarding) until the peer closes:
        closing at once with unread input would reset the connection and could lose the error just sent."""
        self.flush()
        t = self.transport
        if t is None or t.is_closing():
            return
        try:
            if t.can_write_eof():
                t.write_eof()
                asyncio.get_running_loop().call_later(LINGER_SECONDS, t.close)
                return
        except OSError:  # the peer is already gone
            pass
        t.close()

    def _teardown(self) -> None:
        if self.phase == "gone":
            return
        self.phase = "gone"
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        for s in self.sessions.values():
            for link in s.links.values():
                link.detached = True
                link.closed()
        self.sessions.clear()
        self.server.connections.discard(self)

    def fail(self, condition: str, description: str) -> None:
        """End this connection with an AMQP error (a close frame once open, else just the socket)."""
        if self.phase == "open":  # the peer's open never came: open, then close with the error (as the spec asks)
            self.write(self._open_frame())
        if self.phase in ("opened", "open"):
            self.write(frame(0, performative(CLOSE, [amqp_error(condition, description)])))
        elif self.phase == "sasl":  # no AMQP connection yet: the SASL layer's own failure outcome
            self.write(frame(0, performative(SASL_OUTCOME, [UByte(3), description.encode()[:255]]), ftype=1))
        self.server.errors += 1
        log.info("closing connection: %s: %s", condition, description)
        self.flush()
        self._shutdown()
        self._teardown()

    def data_received(self, data: bytes) -> None:
        if self.phase == "gone":
            return
        self.buf += data
        try:
            self._process()
        except AmqpError as exc:
            self.fail(exc.condition, exc.description)
        except DecodeError as exc:
            self.fail("amqp:decode-error", str(exc))
        except Exception as exc:  # a server bug must cost one connection, never the server
            log.exception("internal error handling a frame")
            self.fail("amqp:internal-error", f"{type(exc).__name__}")
        finally:
            for s in list(self.sessions.values()):
                s.flush_accepts()
            self.flush()

    # -- framing ------------------------------------------------------------------------------
    def _process(self) -> None:
        buf = self.buf
        while self.phase not in ("gone", "closed"):
            if self.phase == "header":
                if len(buf) < 8:
                    if buf and not (SASL_HEADER.startswith(bytes(buf)) or AMQP_HEADER.startswith(bytes(buf))):
                        self._bad_header()
                    return
                header = bytes(buf[:8])
                del buf[:8]
                if header == SASL_HEADER and not self.sasl_done:
                    self.write(SASL_HEADER)
                    mechs = Array(Symbol, [Symbol(m) for m in MECHANISMS])
                    self.write(frame(0, performative(SASL_MECHANISMS, [mechs]), ftype=1))
                    self.phase = "sasl"
                elif header == AMQP_HEADER:
                    self.write(AMQP_HEADER)
                    self.phase = "open"
                else:
                    self._bad_header()
                    return
                continue
            if len(buf) < 8:
                return
            size = _I.unpack_from(buf, 0)[0]
            doff, ftype = buf[4], buf[5]
            if size < 8 or doff < 2 or doff * 4 > size:
                raise AmqpError("amqp:connection:framing-error", f"bad frame header (size {size}, doff {doff})")
            if size > self.server.max_frame_size:
                raise AmqpError("amqp:frame-size-too-large",
                                f"frame of {size} bytes exceeds max-frame-size {self.server.max_frame_size}")
            if len(buf) < size:
                return
            channel = _H.unpack_from(buf, 6)[0]
            body = bytes(buf[doff * 4:size])
            del buf[:size]
            if self.phase == "sasl":
                if ftype != 1:
                    raise AmqpError("amqp:connection:framing-error", "expected a SASL frame")
                self._sasl(body)
                continue
            if ftype != 0:
                raise AmqpError("amqp:connection:framing-error", f"unexpected frame type {ftype}")
            if not body:
                continue  # heartbeat
            value, end = codec.decode_at(body, 0)
            code, fields = _fields(value)
            payload = body[end:]
            if code != TRANSFER and payload:
                raise AmqpError("amqp:decode-error", "trailing bytes after a performative")
            self._frame(channel, code, fields, payload)

    def _bad_header(self) -> None:
        self.write(SASL_HEADER if not self.sasl_done else AMQP_HEADER)
        self.flush()
        self.server.errors += 1
        self._shutdown()
        self._teardown()

    def _sasl(self, body: bytes) -> None:
        value = codec.decode(body)
        code, fields = _fields(value)
        if code != SASL_INIT:
            raise AmqpError("amqp:not-allowed", "expected sasl-init")
        mechanism, response = fields[0], fields[1]
        ok = mechanism in MECHANISMS
        if ok and mechanism == "PLAIN":
            parts = bytes(response or b"").split(b"\0")
            ok = len(parts) == 3 and parts[1].decode("utf-8", "replace") == self.server.key_name and \
                parts[2].decode("utf-8", "replace") == self.server.key
        self.write(frame(0, performative(SASL_OUTCOME, [UByte(0 if ok else 1), None]), ftype=1))
        if not ok:
            self.flush()
            self.server.errors += 1
            self._shutdown()
            self._teardown()
            return
        if mechanism == "PLAIN":
            self.authorized.add("*")
        self.sasl_done = True
        self.phase = "header"

    def _frame(self, channel: int, code: int, f: list[Any], payload: bytes) -> None:
        if self.phase == "open":
            if code != OPEN or channel != 0:
                raise AmqpError("amqp:not-allowed", "the first frame must be open on channel 0")
            self._open(f)
            return
        if code == OPEN:
            raise AmqpError("amqp:not-allowed", "open received twice")
        if code == CLOSE:
            self.write(frame(0, performative(CLOSE, [None])))
            self.flush()
            self.phase = "closed"
            self._shutdown()
            self._teardown()
            return
        if code == BEGIN:
            self._begin(channel, f)
            return
        session = self.sessions.get(channel)
        if session is None:
            raise AmqpError("amqp:not-allowed", f"frame on channel {channel} with no session")
        if code == END:
            for link in session.links.values():
                link.detached = True
                link.closed()
            del self.sessions[channel]
            self.write(frame(channel, performative(END, [None])))
        elif code == ATTACH:
            self._attach(session, f)
        elif code == FLOW:
            self._flow(session, f)
        elif code == TRANSFER:
            self._transfer(session, f, payload)
        elif code == DISPOSITION:
            pass  # the server settles what it sends; client dispositions need no answer
        elif code == DETACH:
            handle = _uint(f[0], "handle")
            gone = session.links.pop(handle, None)
            if gone is None:
                raise AmqpError("amqp:session:unattached-handle", f"detach of unattached handle {handle}")
            link = gone
            link.detached = True
            link.closed()
            self.write(frame(channel, performative(DETACH, [UInt(handle), bool(f[1]), None])))

    # -- connection and session ---------------------------------------------------------------
    def _open(self, f: list[Any]) -> None:
        self.remote_max_frame = max(512, min(_uint(f[2], "max-frame-size", 0xFFFFFFFF), self.server.max_frame_size))
        idle = f[4]
        self.phase = "opened"
        self.write(self._open_frame())
        if isinstance(idle, int) and idle > 0:
            self.idle_ms = idle
            self._schedule_heartbeat()

    def _open_frame(self) -> bytes:
        return frame(0, performative(OPEN, [self.server.container_id, None, UInt(self.server.max_frame_size),
                                            UShort(0xFFFF), None, None, None, None, None, None]))

    def _schedule_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        self.heartbeat = loop.call_later(self.idle_ms / 2000, self._beat)

    def _beat(self) -> None:
        if self.phase != "opened":
            return
        if time.monotonic() - self.last_write >= self.idle_ms / 2000:
            self.write(b"\x00\x00\x00\x08\x02\x00\x00\x00")
            self.flush()
        self._schedule_heartbeat()

    def _begin(self, channel: int, f: list[Any]) -> None:
        if channel in self.sessions:
            raise AmqpError("amqp:not-allowed", f"channel {channel} already has a session")
        if f[0] is not None:
            raise AmqpError("amqp:not-allowed", "the server does not begin sessions")
        session = Session(self, channel, channel, _uint(f[1], "next-outgoing-id"), _uint(f[2], "incoming-window"))
        self.sessions[channel] = session
        self.write(frame(channel, performative(BEGIN, [
            UShort(channel), UInt(0), UInt(INCOMING_WINDOW), UInt(INCOMING_WINDOW), UInt(0xFFFFFFFF),
            None, None, None])))

    # -- links --------------------------------------------------------------------------------
    def _attach(self, session: Session, f: list[Any]) -> None:
        name, handle, role = f[0], _uint(f[1], "handle"), f[2]
        if not isinstance(name, str) or not isinstance(role, bool):
            raise AmqpError("amqp:invalid-field", "attach needs a name and a role")
        if handle in session.links:
            raise AmqpError("amqp:session:handle-in-use", f"handle {handle} is in use")
        source = f[5].value if isinstance(f[5], Described) and isinstance(f[5].value, list) else None
        target = f[6].value if isinstance(f[6], Described) and isinstance(f[6].value, list) else None
        snd_mode = f[3] if isinstance(f[3], int) else 2
        rcv_mode = f[4] if isinstance(f[4], int) else 0
        sending = role is True  # the client receives
        props = f[13] if isinstance(f[13], dict) else {}
        src_addr = source[0] if source else None
        tgt_addr = target[0] if target else None
        desired = f[12] if isinstance(f[12], list) else [f[12]] if f[12] is not None else []
        link, error = self._make_link(session, name, handle, sending, source, target, snd_mode, src_addr, tgt_addr,
                                      props, desired)
        src_field = f[5] if f[5] is not None else Described(ULong(SOURCE), [src_addr] + [None] * 10)
        tgt_field = f[6] if f[6] is not None else Described(ULong(TARGET), [tgt_addr] + [None] * 6)
        src_field = _full(src_field, 11)
        tgt_field = _full(tgt_field, 7)
        self.write(frame(session.channel, performative(ATTACH, [
            name, UInt(handle), not role, UByte(snd_mode if snd_mode in (0, 1, 2) else 2),
            UByte(rcv_mode if rcv_mode in (0, 1) else 0), src_field, tgt_field, None, None,
            UInt(0) if sending else None, ULong(MAX_MESSAGE_SIZE),
            Array(Symbol, [Symbol(RUNTIME_METRIC)]) if isinstance(link, ConsumeLink) and link.runtime_metric else None,
            None, None])))
        if error is not None or link is None:
            self.write(frame(session.channel, performative(DETACH, [UInt(handle), True, error])))
            return
        session.links[handle] = link
        if not sending:
            link.credit = LINK_CREDIT
            session.flow(link)
        elif isinstance(link, ConsumeLink):
            link.start()

    def _make_link(self, session: Session, name: str, handle: int, sending: bool, source: Any, target: Any,
                   snd_mode: int, src_addr: Any, tgt_addr: Any, props: dict[Any, Any],
                   desired: list[Any]) -> tuple[Link | None, Any]:
        args = (session, name, handle, sending, source, target, snd_mode)
        address = entity_path(src_addr if sending else tgt_addr)
        node = address.lower()
        if node in ("$cbs", "$management"):
            if sending:
                return ReplyLink(*args), None
            return RequestLink(node, *args), None
        parts = address.split("/")
        hub = self.server.namespace.hub(parts[0]) if parts and parts[0] else None
        if hub is None:
            return None, amqp_error("amqp:not-found", f"the messaging entity '{address}' could not be found")
        if not self._authorized(hub.name):
            return None, amqp_error("amqp:unauthorized-access", f"no valid put-token for '{hub.name}'")
        lowered = [p.lower() for p in parts]
        if not sending:
            if len(parts) == 1:
                return PublishLink(hub, None, *args), None
            if len(parts) == 3 and lowered[1] == "partitions":
                part = hub.partition(parts[2])
                if part is None:
                    return None, amqp_error("amqp:not-found", f"no partition '{parts[2]}' in hub '{hub.name}'")
                return PublishLink(hub, part, *args), None
            return None, amqp_error("amqp:not-found", f"cannot send to '{address}'")
        if len(parts) != 5 or lowered[1] != "consumergroups" or lowered[3] != "partitions":
            return None, amqp_error("amqp:not-found", f"cannot receive from '{address}'")
        group = hub.groups.get(lowered[2])
        if group is None:
            return None, amqp_error("amqp:not-found", f"no consumer group '{parts[2]}' in hub '{hub.name}'")
        part = hub.partition(parts[4])
        if part is None:
            return None, amqp_error("amqp:not-found", f"no partition '{parts[4]}' in hub '{hub.name}'")
        try:
            start = self._start_position(part, source)
        except ValueError as exc:
            return None, amqp_error("amqp:invalid-field", str(exc))
        epoch = props.get(EPOCH)
        if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool)):
            return None, amqp_error("amqp:invalid-field", "com.microsoft:epoch must be a long")
        link = ConsumeLink(hub, group, part, start, epoch, *args)
        link.runtime_metric = RUNTIME_METRIC in desired
        error = self.server.admit_reader(link)
        if error is not None:
            return None, error
        return link, None

    @staticmethod
    def _start_position(part: Partition, source: Any) -> int:
        filters = source[7] if source and len(source) > 7 and isinstance(source[7], dict) else {}
        expr = None
        for k, v in filters.items():
            if k == SELECTOR or (isinstance(v, Described) and v.descriptor in (SELECTOR, SELECTOR_CODE)):
                expr = v.value if isinstance(v, Described) else v
        if expr is None:
            return part.first_seq
        if isinstance(expr, bytes):
            expr = expr.decode("utf-8", "replace")
        m = _SELECTOR_RE.match(str(expr))
        if m is None:
            raise ValueError(f"unsupported selector filter {expr!r}")
        try:
            return part.start_seq(m.group(1), m.group(2), m.group(3))
        except ValueError:
            raise ValueError(f"bad value in selector filter {expr!r}") from None

    def _authorized(self, hub: str) -> bool:
        if "*" in self.authorized:
            return True
        h = hub.lower()
        for aud in self.authorized:
            path = entity_path(aud).lower()
            if path == "" or path == h or path.startswith(h + "/"):
                return True
        return False

    def _flow(self, session: Session, f: list[Any]) -> None:
        nid = f[0]
        window = _uint(f[1], "incoming-window")
        next_in = _uint(nid, "next-incoming-id") if nid is not None else 0
        session.remote_incoming_window = next_in + window - session.next_outgoing_id
        if f[4] is None:
            for each in list(session.links.values()):
                if each.sending:
                    each.on_credit()
            return
        handle = _uint(f[4], "handle")
        link = session.links.get(handle)
        if link is None:
            raise AmqpError("amqp:session:unattached-handle", f"flow for unattached handle {handle}")
        if link.sending:
            delivery_count = f[5] if isinstance(f[5], int) else 0
            credit = _uint(f[6], "link-credit", 0)
            link.credit = (delivery_count + credit - link.delivery_count) & 0xFFFFFFFF
            if link.credit > 0x7FFFFFFF:
                link.credit = 0
            link.on_credit()
            if f[8]:  # drain: use up the credit
                link.delivery_count += link.credit
                link.credit = 0
                session.flow(link, drain=True)
            elif f[9]:
                session.flow(link)
        elif f[9]:
            session.flow(link)

    def _transfer(self, session: Session, f: list[Any], payload: bytes) -> None:
        handle = _uint(f[0], "handle")
        link = session.links.get(handle)
        if link is None:
            raise AmqpError("amqp:session:unattached-handle", f"transfer on unattached handle {handle}")
        if link.sending:
            raise AmqpError("amqp:not-allowed", "transfer on a link the server sends on")
        session.next_incoming_id = (session.next_incoming_id + 1) & 0xFFFFFFFF
        if not link.incoming:
            link.incoming_id = _uint(f[1], "delivery-id")
            link.incoming_format = _uint(f[3], "message-format", 0)
            link.incoming_settled = bool(f[4])
        if f[9]:  # aborted
            link.incoming = bytearray()
            return
        link.incoming += payload
        if len(link.incoming) > MAX_MESSAGE_SIZE + 65536:
            raise AmqpError("amqp:link:message-size-exceeded", "message too large")
        if f[5]:  # more
            return
        data = bytes(link.incoming)
        link.incoming = bytearray()
        link.delivery_count += 1
        link.credit -= 1
        try:
            ok, error = link.on_message(data, link.incoming_format)
        except (DecodeError, IndexError, struct.error, TypeError, KeyError) as exc:
            ok, error = False, amqp_error("amqp:decode-error", f"malformed message: {exc}")
        if not link.incoming_settled:
            if ok:
                session.pending_accepts.append(link.incoming_id)
            else:
                self.write(frame(session.channel, performative(DISPOSITION, [
                    True, UInt(link.incoming_id), UInt(link.incoming_id), True,
                    Described(ULong(REJECTED), [error]), None])))
        if link.credit < LINK_CREDIT // 2:
            link.credit = LINK_CREDIT
            session.flow(link)

    # -- requests -----------------------------------------------------------------------------
    def find_reply_link(self, node: str, reply_to: str | None) -> ReplyLink | None:
        fallback = None
        for s in self.sessions.values():
            for link in s.links.values():
                if isinstance(link, ReplyLink) and entity_path(link.source[0] if link.source else None).lower() == node:
                    tgt = link.target[0] if link.target else None
                    if reply_to is None or tgt == reply_to:
                        return link
                    fallback = fallback or link
        return fallback

    def handle_request(self, node: str, req: messages.Request) -> tuple[int, str, Any]:
        app = req.app
        if node == "$cbs":
            if app.get("operation") != "put-token":
                return 400, f"unsupported $cbs operation {app.get('operation')!r}", None
            token = req.body
            audience = app.get("name")
            if not isinstance(token, str) or not isinstance(audience, str):
                return 400, "put-token needs a token body and a name", None
            problem = self._check_token(str(app.get("type") or ""), token)
            if problem is not None:
                return 401, f"unauthorized: {problem}", None
            self.authorized.add(audience)
            return 200, "OK", None
        token = app.get("security_token")
        if isinstance(token, str):
            problem = self._check_token("servicebus.windows.net:sastoken" if token.startswith("Shared") else "jwt",
                                        token)
            if problem is not None:
                return 401, f"unauthorized: {problem}", None
        elif "*" not in self.authorized and not self.authorized:
            return 401, "unauthorized: no security_token", None
        if app.get("operation") != "READ":
            return 400, f"unsupported $management operation {app.get('operation')!r}", None
        name = app.get("name")
        hub = self.server.namespace.hub(name) if isinstance(name, str) else None
        if hub is None:
            return 404, f"the messaging entity '{name}' could not be found", None
        kind = app.get("type")
        if kind == "com.microsoft:eventhub":
            return 200, "OK", {
                "name": hub.name, "type": "com.microsoft:eventhub",
                "created_at": codec.Timestamp(hub.created_ms), "partition_count": len(hub.partitions),
                "partition_ids": Array(str, [p.id for p in hub.partitions]),
            }
        if kind == "com.microsoft:partition":
            pid = app.get("partition")
            part = hub.partition(str(pid)) if pid is not None else None
            if part is None:
                return 404, f"no partition {pid!r} in hub '{hub.name}'", None
            last = part.events[-1] if part.events else None
            return 200, "OK", {
                "name": hub.name, "type": "com.microsoft:partition", "partition": part.id,
                "begin_sequence_number": part.first_seq if part.events else max(part.next_seq - 1, 0)
                if part.next_seq else 0,
                "last_enqueued_sequence_number": part.next_seq - 1,
                "last_enqueued_offset": str(last.offset) if last else "-1",
                "last_enqueued_time_utc": codec.Timestamp(part.last_enqueued_ms),
                "is_partition_empty": not part.events,
            }
        return 400, f"unsupported $management type {kind!r}", None

    def _check_token(self, kind: str, token: str) -> str | None:
        if kind == "jwt":
            return None  # an Entra ID token cannot be checked offline; the emulator accepts it
        return verify_sas(token, self.server.key_name, self.server.key)


def _full(field: Any, n: int) -> Any:
    if isinstance(field, Described) and isinstance(field.value, list):
        v = list(field.value)[:n]
        return Described(field.descriptor if not isinstance(field.descriptor, int) else ULong(field.descriptor),
                         v + [None] * (n - len(v)))
    return field


class Server:
    """The emulator's AMQP endpoint over a `Namespace`."""

    def __init__(self, namespace: Namespace, *, key_name: str = "RootManageSharedAccessKey",
                 key: str = "SAS_KEY_VALUE", max_frame_size: int = 65536) -> None:
        self.namespace = namespace
        self.key_name = key_name
        self.key = key
        self.max_frame_size = max_frame_size
        self.container_id = f"marketflow-emulator-{uuid.uuid4().hex[:8]}"
        self.connections: set[Connection] = set()
        self.readers: dict[tuple[str, str, str], set[ConsumeLink]] = {}
        self.errors = 0
        self.appended_listeners: list[Callable[[Hub, Partition, list[StoredEvent]], None]] = []
        self._server: asyncio.base_events.Server | None = None

    def on_appended(self, hub: Hub, partition: Partition, events: list[StoredEvent]) -> None:
        for cb in self.appended_listeners:
            cb(hub, partition, events)

    def admit_reader(self, link: ConsumeLink) -> Any:
        """Owner-level rules: a higher (or equal) epoch displaces lower ones and non-epoch readers; a lower
        epoch or a non-epoch reader is refused while an epoch reader is attached."""
        readers = self.readers.setdefault(link.key, set())
        live = {r for r in readers if not r.detached}
        readers &= live
        epochs = [r.epoch for r in live if r.epoch is not None]
        top = max(epochs) if epochs else None
        if link.epoch is None:
            if top is not None:
                return amqp_error("amqp:link:stolen", f"a receiver with epoch {top} is attached; a non-epoch "
                                  "receiver cannot be created")
            if len(live) >= MAX_READERS:
                return amqp_error("amqp:resource-limit-exceeded",
                                  f"at most {MAX_READERS} receivers per partition per consumer group")
        else:
            if top is not None and top > link.epoch:
                return amqp_error("amqp:link:stolen", f"a receiver with a higher epoch {top} is attached; epoch "
                                  f"{link.epoch} is refused")
            for r in list(live):
                self._steal(r, link.epoch)
                readers.discard(r)
        readers.add(link)
        return None

    @staticmethod
    def _steal(r: ConsumeLink, epoch: int) -> None:
        r.detached = True
        r.closed()
        r.session.links.pop(r.handle, None)
        err = amqp_error("amqp:link:stolen", f"new receiver with higher epoch of '{epoch}' is created hence current "
                         f"receiver with epoch '{r.epoch}' is getting disconnected")
        r.session.conn.write(frame(r.session.channel, performative(DETACH, [UInt(r.handle), True, err])))
        r.session.conn.flush()

    async def start(self, host: str = "127.0.0.1", port: int = 5672) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for c in list(self.connections):
                if c.transport is not None:
                    c.transport.close()
            await self._server.wait_closed()
            self._server = None
