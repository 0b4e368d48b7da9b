"""AMQP 1.0 type system (OASIS AMQP 1.0 part 1, "Types"): encode and decode, written from the spec.

Python values map onto AMQP types as follows when encoding: None -> null, bool -> boolean,
int -> long, float -> double, str -> string, bytes -> binary, dict -> map, list -> list,
uuid.UUID -> uuid; the wrapper types below pick the other encodings (symbol, uint, ulong, ubyte,
ushort, timestamp, array, described). Decoding gives the same wrappers back for symbols and
described values and plain Python values for everything else, so the server can tell a symbol
from a string. Every malformed input raises `DecodeError` (never IndexError or struct.error), so
a bad frame closes only its own connection.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple


class DecodeError(ValueError):
    """The bytes are not a well-formed AMQP value."""


class Symbol(str):
    """An AMQP symbol (ASCII)."""

    __slots__ = ()


class UInt(int):
    __slots__ = ()


class ULong(int):
    __slots__ = ()


class UByte(int):
    __slots__ = ()


class UShort(int):
    __slots__ = ()


class Timestamp(int):
    """Milliseconds since the Unix epoch."""

    __slots__ = ()


class Described(NamedTuple):
    descriptor: Any
    value: Any


class Array(NamedTuple):
    """A homogeneous AMQP array; `kind` is one of the wrapper types (Symbol, str, UInt, ULong, int)."""

    kind: type
    items: list[Any]


_B = struct.Struct(">B")
_b = struct.Struct(">b")
_H = struct.Struct(">H")
_h = struct.Struct(">h")
_I = struct.Struct(">I")
_i = struct.Struct(">i")
_Q = struct.Struct(">Q")
_q = struct.Struct(">q")
_f = struct.Struct(">f")
_d = struct.Struct(">d")
_BB = struct.Struct(">BB")
_II = struct.Struct(">II")

MAX_DEPTH = 48


# ---------------------------------------------------------------------------------------------
# encoding


def _enc_str(out: bytearray, data: bytes, small: int, large: int) -> None:
    n = len(data)
    if n < 256:
        out.append(small)
        out.append(n)
    else:
        out.append(large)
        out += _I.pack(n)
    out += data


def _enc_compound(out: bytearray, body: bytes, count: int, small: int, large: int) -> None:
    if len(body) + 1 < 256 and count < 256:
        out.append(small)
        out.append(len(body) + 1)
        out.append(count)
    else:
        out.append(large)
        out += _II.pack(len(body) + 4, count)
    out += body


_ARRAY_CTOR = {Symbol: (0xA3, 0xB3), str: (0xA1, 0xB1)}


def _enc_array(out: bytearray, arr: Array) -> None:
    kind, items = arr.kind, arr.items
    body = bytearray()
    if kind in _ARRAY_CTOR:
        raw = [(s.encode("ascii") if kind is Symbol else s.encode("utf-8")) for s in items]
        small, large = _ARRAY_CTOR[kind]
        if all(len(r) < 256 for r in raw):
            body.append(small)
            for r in raw:
                body.append(len(r))
                body += r
        else:
            body.append(large)
            for r in raw:
                body += _I.pack(len(r))
                body += r
    elif kind is UInt:
        body.append(0x70)
        for v in items:
            body += _I.pack(v)
    elif kind is ULong:
        body.append(0x80)
        for v in items:
            body += _Q.pack(v)
    elif kind is int:
        body.append(0x81)
        for v in items:
            body += _q.pack(v)
    else:
        raise TypeError(f"unsupported array kind {kind!r}")
    n = len(items)
    if len(body) + 1 < 256 and n < 256:
        out.append(0xE0)
        out.append(len(body) + 1)
        out.append(n)
    else:
        out.append(0xF0)
        out += _II.pack(len(body) + 4, n)
    out += body


def encode_into(out: bytearray, value: Any) -> None:
    """Append the AMQP encoding of `value` to `out`."""
    t = type(value)
    if value is None:
        out.append(0x40)
    elif t is bool:
        out.append(0x41 if value else 0x42)
    elif t is Symbol:
        _enc_str(out, value.encode("ascii"), 0xA3, 0xB3)
    elif t is str:
        _enc_str(out, value.encode("utf-8"), 0xA1, 0xB1)
    elif t is bytes or t is bytearray or t is memoryview:
        _enc_str(out, bytes(value), 0xA0, 0xB0)
    elif t is int:
        if -128 <= value <= 127:
            out.append(0x55)
            out += _b.pack(value)
        else:
            out.append(0x81)
            out += _q.pack(value)
    elif t is UInt:
        if value == 0:
            out.append(0x43)
        elif value < 256:
            out.append(0x52)
            out.append(value)
        else:
            out.append(0x70)
            out += _I.pack(value)
    elif t is ULong:
        if value == 0:
            out.append(0x44)
        elif value < 256:
            out.append(0x53)
            out.append(value)
        else:
            out.append(0x80)
            out += _Q.pack(value)
    elif t is UByte:
        out.append(0x50)
        out.append(value)
    elif t is UShort:
        out.append(0x60)
        out += _H.pack(value)
    elif t is Timestamp:
        out.append(0x83)
        out += _q.pack(value)
    elif t is float:
        out.append(0x82)
        out += _d.pack(value)
    elif t is uuid.UUID:
        out.append(0x98)
        out += value.bytes
    elif t is Described:
        out.append(0x00)
        encode_into(out, value.descriptor)
        encode_into(out, value.value)
    elif t is list or t is tuple:
        if not value:
            out.append(0x45)
            return
        body = bytearray()
        for item in value:
            encode_into(body, item)
        _enc_compound(out, bytes(body), len(value), 0xC0, 0xD0)
    elif t is dict:
        body = bytearray()
        for k, v in value.items():
            encode_into(body, k)
            encode_into(body, v)
        _enc_compound(out, bytes(body), 2 * len(value), 0xC1, 0xD1)
    elif t is Array:
        _enc_array(out, value)
    elif isinstance(value, str):  # str subclasses other than Symbol
        _enc_str(out, str(value).encode("utf-8"), 0xA1, 0xB1)
    elif isinstance(value, int):
        encode_into(out, int(value))
    else:
        raise TypeError(f"cannot encode {t.__name__} as AMQP")


def encode(value: Any) -> bytes:
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


def described_list(code: int, fields: list[Any]) -> bytes:
    """A described list with a small-ulong descriptor, every field present (the SDK reads by position)."""
    out = bytearray(b"\x00\x53")
    out.append(code)
    body = bytearray()
    for f in fields:
        encode_into(body, f)
    _enc_compound(out, bytes(body), len(fields), 0xC0, 0xD0)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# decoding

Decoder = Callable[[bytes, int, int], tuple[Any, int]]


def _need(buf: bytes, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise DecodeError("value truncated")


def _fixed(st: struct.Struct) -> Decoder:
    size = st.size

    def dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if pos + size > len(buf):
            raise DecodeError("value truncated")
        return st.unpack_from(buf, pos)[0], pos + size

    return dec


def _const(value: Any) -> Decoder:
    def dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        return value, pos

    return dec


def _dec_bool(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    _need(buf, pos, 1)
    v = buf[pos]
    if v > 1:
        raise DecodeError("bad boolean")
    return v == 1, pos + 1


def _dec_ts(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    _need(buf, pos, 8)
    return Timestamp(_q.unpack_from(buf, pos)[0]), pos + 8


def _dec_uuid(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    _need(buf, pos, 16)
    return uuid.UUID(bytes=bytes(buf[pos:pos + 16])), pos + 16


def _dec_dec128(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    _need(buf, pos, 16)
    return bytes(buf[pos:pos + 16]), pos + 16  # kept opaque; nothing the emulator reads is a decimal


def _variable(width: int, conv: Callable[[bytes], Any]) -> Decoder:
    def dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if width == 1:
            _need(buf, pos, 1)
            n = buf[pos]
        else:
            _need(buf, pos, 4)
            n = _I.unpack_from(buf, pos)[0]
        start = pos + width
        end = start + n
        if end > len(buf):
            raise DecodeError("value truncated")
        return conv(bytes(buf[start:end])), end

    return dec


def _to_str(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("string is not UTF-8") from None


def _to_sym(b: bytes) -> Symbol:
    try:
        return Symbol(b.decode("ascii"))
    except UnicodeDecodeError:
        raise DecodeError("symbol is not ASCII") from None


def _compound(width: int, is_map: bool) -> Decoder:
    def dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise DecodeError("nesting too deep")
        if width == 1:
            _need(buf, pos, 2)
            size, count = buf[pos], buf[pos + 1]
            start = pos + 2
            end = pos + 1 + size
            if size < 1:
                raise DecodeError("bad compound size")
        else:
            _need(buf, pos, 8)
            size, count = _II.unpack_from(buf, pos)
            start = pos + 8
            end = pos + 4 + size
            if size < 4:
                raise DecodeError("bad compound size")
        if end > len(buf):
            raise DecodeError("compound truncated")
        if count > end - start:
            raise DecodeError("compound count exceeds its size")
        if is_map and count % 2:
            raise DecodeError("map with an odd number of items")
        items = []
        p = start
        sub = buf if end == len(buf) else buf[:end]
        for _ in range(count):
            v, p = decode_at(sub, p, depth + 1)
            items.append(v)
        if p != end:
            raise DecodeError("compound size does not match its items")
        if is_map:
            result: dict[Any, Any] = {}
            for i in range(0, count, 2):
                k = items[i]
                try:
                    result[k] = items[i + 1]
                except TypeError:
                    raise DecodeError("unhashable map key") from None
            return result, end
        return items, end

    return dec


def _array(width: int) -> Decoder:
    def dec(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise DecodeError("nesting too deep")
        if width == 1:
            _need(buf, pos, 2)
            size, count = buf[pos], buf[pos + 1]
            start, end = pos + 2, pos + 1 + size
        else:
            _need(buf, pos, 8)
            size, count = _II.unpack_from(buf, pos)
            start, end = pos + 8, pos + 4 + size
        if end > len(buf) or start > end:
            raise DecodeError("array truncated")
        if count == 0:
            return [], end
        _need(buf, start, 1)
        ctor = buf[start]
        if ctor == 0x00:
            raise DecodeError("arrays of described values are not supported")
        fn = _DECODERS[ctor]
        if fn is None:
            raise DecodeError(f"bad array element constructor 0x{ctor:02x}")
        if count > end - start:
            if ctor not in (0x40, 0x41, 0x42, 0x43, 0x44, 0x45):
                raise DecodeError("array count exceeds its size")
            if count > 1 << 16:
                raise DecodeError("array too long")
        sub = buf[:end]
        p = start + 1
        items = []
        for _ in range(count):
            v, p = fn(sub, p, depth + 1)
            items.append(v)
        if p != end:
            raise DecodeError("array size does not match its items")
        return items, end

    return dec


def _dec_described(buf: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise DecodeError("nesting too deep")
    descriptor, pos = decode_at(buf, pos, depth + 1)
    value, pos = decode_at(buf, pos, depth + 1)
    return Described(descriptor, value), pos


_DECODERS: list[Decoder | None] = [None] * 256
_DECODERS[0x00] = _dec_described
_DECODERS[0x40] = _const(None)
_DECODERS[0x41] = _const(True)
_DECODERS[0x42] = _const(False)
_DECODERS[0x43] = _const(0)
_DECODERS[0x44] = _const(0)
_DECODERS[0x45] = _const([])
_DECODERS[0x50] = _fixed(_B)
_DECODERS[0x51] = _fixed(_b)
_DECODERS[0x52] = _fixed(_B)
_DECODERS[0x53] = _fixed(_B)
_DECODERS[0x54] = _fixed(_b)
_DECODERS[0x55] = _fixed(_b)
_DECODERS[0x56] = _dec_bool
_DECODERS[0x60] = _fixed(_H)
_DECODERS[0x61] = _fixed(_h)
_DECODERS[0x70] = _fixed(_I)
_DECODERS[0x71] = _fixed(_i)
_DECODERS[0x72] = _fixed(_f)
_DECODERS[0x73] = _fixed(_I)  # char (UTF-32 code point), kept as its number
_DECODERS[0x80] = _fixed(_Q)
_DECODERS[0x81] = _fixed(_q)
_DECODERS[0x82] = _fixed(_d)
_DECODERS[0x83] = _dec_ts
_DECODERS[0x84] = _fixed(struct.Struct(">I"))  # decimal32, opaque
_DECODERS[0x94] = _dec_dec128
_DECODERS[0x98] = _dec_uuid
_DECODERS[0xA0] = _variable(1, bytes)
_DECODERS[0xA1] = _variable(1, _to_str)
_DECODERS[0xA3] = _variable(1, _to_sym)
_DECODERS[0xB0] = _variable(4, bytes)
_DECODERS[0xB1] = _variable(4, _to_str)
_DECODERS[0xB3] = _variable(4, _to_sym)
_DECODERS[0xC0] = _compound(1, False)
_DECODERS[0xC1] = _compound(1, True)
_DECODERS[0xD0] = _compound(4, False)
_DECODERS[0xD1] = _compound(4, True)
_DECODERS[0xE0] = _array(1)
_DECODERS[0xF0] = _array(4)


def decode_at(buf: bytes, pos: int, depth: int = 0) -> tuple[Any, int]:
    """Decode one value starting at `pos`; returns it and the position after it."""
    if pos >= len(buf):
        raise DecodeError("value truncated")
    fn = _DECODERS[buf[pos]]
    if fn is None:
        raise DecodeError(f"unknown constructor 0x{buf[pos]:02x}")
    return fn(buf, pos + 1, depth)


def decode(buf: bytes) -> Any:
    """Decode exactly one value filling `buf`."""
    value, end = decode_at(buf, 0)
    if end != len(buf):
        raise DecodeError("trailing bytes after value")
    return value


_FIXED_WIDTH = {0x40: 0, 0x41: 0, 0x42: 0, 0x43: 0, 0x44: 0, 0x45: 0, 0x50: 1, 0x51: 1, 0x52: 1, 0x53: 1, 0x54: 1,
                0x55: 1, 0x56: 1, 0x60: 2, 0x61: 2, 0x70: 4, 0x71: 4, 0x72: 4, 0x73: 4, 0x74: 4, 0x80: 8, 0x81: 8,
                0x82: 8, 0x83: 8, 0x84: 8, 0x94: 16, 0x98: 16}
_SIZE1 = frozenset({0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0})
_SIZE4 = frozenset({0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0})
_STR1 = frozenset({0xA0, 0xA1, 0xA3})
_STR4 = frozenset({0xB0, 0xB1, 0xB3})


def skip_at(buf: bytes, pos: int, depth: int = 0) -> int:
    """The position after the value at `pos`, found from its size without decoding it (compound and
    variable-width values are jumped over in one step)."""
    if pos >= len(buf):
        raise DecodeError("value truncated")
    c = buf[pos]
    pos += 1
    w = _FIXED_WIDTH.get(c)
    if w is not None:
        end = pos + w
    elif c in _SIZE1:
        if pos >= len(buf):
            raise DecodeError("value truncated")
        end = pos + 1 + buf[pos]
    elif c in _SIZE4:
        if pos + 4 > len(buf):
            raise DecodeError("value truncated")
        end = pos + 4 + _I.unpack_from(buf, pos)[0]
    elif c == 0x00:
        if depth > MAX_DEPTH:
            raise DecodeError("nesting too deep")
        return skip_at(buf, skip_at(buf, pos, depth + 1), depth + 1)
    else:
        raise DecodeError(f"unknown constructor 0x{c:02x}")
    if end > len(buf):
        raise DecodeError("value truncated")
    return end


def check_at(buf: bytes, pos: int, end: int | None = None, depth: int = 0) -> int:
    """Like `skip_at`, but walks into lists, maps, arrays and described values and checks that every item
    is well-formed and that counts and sizes agree, without building Python values (a cheap validation
    of what a consumer's decoder will walk)."""
    limit = len(buf) if end is None else end
    if pos >= limit:
        raise DecodeError("value truncated")
    c = buf[pos]
    p = pos + 1
    w = _FIXED_WIDTH.get(c)
    if w is not None:
        if p + w > limit:
            raise DecodeError("value truncated")
        return p + w
    if depth > MAX_DEPTH:
        raise DecodeError("nesting too deep")
    if c == 0x00:
        return check_at(buf, check_at(buf, p, limit, depth + 1), limit, depth + 1)
    if c in (0xA0, 0xA1, 0xA3, 0xB0, 0xB1, 0xB3):
        q = skip_at(buf, pos)
        if q > limit:
            raise DecodeError("value truncated")
        return q
    if c in (0xC0, 0xC1, 0xE0):
        if p + 2 > limit:
            raise DecodeError("compound truncated")
        size, count = buf[p], buf[p + 1]
        start, stop = p + 2, p + 1 + size
        if size < 1:
            raise DecodeError("bad compound size")
    elif c in (0xD0, 0xD1, 0xF0):
        if p + 8 > limit:
            raise DecodeError("compound truncated")
        size, count = _II.unpack_from(buf, p)
        start, stop = p + 8, p + 4 + size
        if size < 4:
            raise DecodeError("bad compound size")
    else:
        raise DecodeError(f"unknown constructor 0x{c:02x}")
    if stop > limit:
        raise DecodeError("compound truncated")
    if c in (0xC1, 0xD1) and count % 2:
        raise DecodeError("map with an odd number of items")
    if c in (0xE0, 0xF0):
        if count == 0:
            return stop
        if start >= stop:
            raise DecodeError("array truncated")
        ctor = buf[start]
        w = _FIXED_WIDTH.get(ctor)
        if ctor == 0x00 or (w is None and ctor not in _SIZE1 and ctor not in _SIZE4):
            raise DecodeError(f"bad array element constructor 0x{ctor:02x}")
        q = start + 1
        if w is not None:
            q += w * count
        else:  # size-prefixed elements (strings, binaries, symbols, compounds): jump by their sizes
            for _ in range(count):
                if ctor in _SIZE1:
                    if q >= stop:
                        raise DecodeError("array truncated")
                    q += 1 + buf[q]
                else:
                    if q + 4 > stop:
                        raise DecodeError("array truncated")
                    q += 4 + _I.unpack_from(buf, q)[0]
                if q > stop:
                    raise DecodeError("array truncated")
        if q != stop:
            raise DecodeError("array size does not match its items")
        return stop
    if count > stop - start:
        raise DecodeError("compound count exceeds its size")
    q = start
    fixed = _FIXED_WIDTH
    while count:
        if q >= stop:
            raise DecodeError("compound truncated")
        c2 = buf[q]
        w2 = fixed.get(c2)
        if w2 is not None:  # scalars and strings inline: the common items of properties and annotations
            q += 1 + w2
        elif c2 in _STR1:
            if q + 1 >= stop:
                raise DecodeError("compound truncated")
            q += 2 + buf[q + 1]
        elif c2 in _STR4:
            if q + 5 > stop:
                raise DecodeError("compound truncated")
            q += 5 + _I.unpack_from(buf, q + 1)[0]
        else:
            q = check_at(buf, q, stop, depth + 1)
        count -= 1
    if q != stop:
        raise DecodeError("compound size does not match its items")
    return stop
