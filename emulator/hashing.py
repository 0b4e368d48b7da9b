"""Partition-key routing: Bob Jenkins' lookup3 `hashlittle2` folded to 16 bits, as Event Hubs does.

The SDK's buffered producer resolves keys on the client side with the same function, and the
compatibility suite checks that the emulator puts every key where that resolver says it goes.
"""

from __future__ import annotations

_M = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & _M; a ^= _rot(c, 4); c = (c + b) & _M  # noqa: E702
    b = (b - a) & _M; b ^= _rot(a, 6); a = (a + c) & _M  # noqa: E702
    c = (c - b) & _M; c ^= _rot(b, 8); b = (b + a) & _M  # noqa: E702
    a = (a - c) & _M; a ^= _rot(c, 16); c = (c + b) & _M  # noqa: E702
    b = (b - a) & _M; b ^= _rot(a, 19); a = (a + c) & _M  # noqa: E702
    c = (c - b) & _M; c ^= _rot(b, 4); b = (b + a) & _M  # noqa: E702
    return a, b, c


def _final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c ^= b; c = (c - _rot(b, 14)) & _M  # noqa: E702
    a ^= c; a = (a - _rot(c, 11)) & _M  # noqa: E702
    b ^= a; b = (b - _rot(a, 25)) & _M  # noqa: E702
    c ^= b; c = (c - _rot(b, 16)) & _M  # noqa: E702
    a ^= c; a = (a - _rot(c, 4)) & _M  # noqa: E702
    b ^= a; b = (b - _rot(a, 14)) & _M  # noqa: E702
    c ^= b; c = (c - _rot(b, 24)) & _M  # noqa: E702
    return a, b, c


def hashlittle2(data: bytes) -> tuple[int, int]:
    """lookup3's two 32-bit hashes (primary, secondary) of `data` with zero seeds."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n) & _M
    p = 0
    while n > 12:
        a = (a + int.from_bytes(data[p:p + 4], "little")) & _M
        b = (b + int.from_bytes(data[p + 4:p + 8], "little")) & _M
        c = (c + int.from_bytes(data[p + 8:p + 12], "little")) & _M
        a, b, c = _mix(a, b, c)
        p += 12
        n -= 12
    if n == 0:
        return c, b
    tail = data[p:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    a, b, c = _final(a, b, c)
    return c, b


def partition_for_key(key: str, partitions: int) -> int:
    """The partition index an event with partition key `key` goes to."""
    if not key:
        return 0
    c, b = hashlittle2(key.encode("utf-8"))
    h = (c ^ b) & 0xFFFF
    if h >= 0x8000:
        h -= 0x10000  # the service folds to a signed 16-bit value
    return abs(h % partitions)
