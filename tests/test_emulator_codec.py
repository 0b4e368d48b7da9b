"""The emulator's AMQP codec and routing, against the SDK's own decoder and partition resolver (oracles)."""

from __future__ import annotations

import random
import string
import uuid

import pytest
from azure.eventhub._buffered_producer._partition_resolver import PartitionResolver
from azure.eventhub._pyamqp._decode import _DECODE_BY_CONSTRUCTOR
from azure.eventhub._pyamqp.utils import generate_sas_token

from emulator.codec import (
    Array,
    DecodeError,
    Described,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
    check_at,
    decode,
    encode,
    skip_at,
)
from emulator.hashing import partition_for_key
from emulator.server import verify_sas

VALUES = [None, True, False, 0, -1, 127, -129, 2**40, UInt(0), UInt(7), UInt(70000), ULong(0), ULong(200),
          ULong(2**63), UByte(3), UShort(513), Timestamp(1_700_000_000_123), 1.25, "", "héllo", "x" * 300,
          b"\x00\xff", b"y" * 400, Symbol("amqp:link:stolen"), uuid.UUID(int=12345), [], [1, "a", None],
          {"k": 1, Symbol("s"): [True]}, Array(Symbol, [Symbol("a"), Symbol("bc")]), Array(str, ["0", "1"]),
          Described(ULong(0x24), []), Described(Symbol("apache.org:selector-filter:string"), "x > '1'")]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_and_the_sdk_decodes_the_same(value) -> None:
    data = encode(value)
    back = decode(data)
    assert back == (list(value.items) if isinstance(value, Array) else value)
    assert skip_at(data, 0) == len(data)
    assert check_at(data, 0) == len(data)
    rest, sdk = _DECODE_BY_CONSTRUCTOR[data[0]](memoryview(data)[1:])
    assert len(rest) == 0  # the SDK's decoder consumes exactly the bytes written
    if isinstance(value, str | bytes) and not isinstance(value, Symbol | bytes):
        assert sdk == value.encode()  # the SDK hands strings back as UTF-8 bytes


@pytest.mark.parametrize("data", [b"", b"\xa1\x05ab", b"\xc0\x05\x09\x40", b"\xd0\x00\x00\x00\x02\x00\x00",
                                  b"\xc1\x03\x01\x40", b"\xa1\x02\xff\xfe", b"\x00" * 200, b"\xe0\x04\x02\x00\x40\x40",
                                  b"\x56\x07", b"\xff"])
def test_malformed_values_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)
    if data not in (b"\xa1\x02\xff\xfe", b"\x56\x07"):  # structure checks do not look inside strings, booleans
        with pytest.raises(DecodeError):
            check_at(data, 0)


def test_partition_keys_land_where_the_sdk_resolver_says() -> None:
    rng = random.Random(7)
    for n in (1, 2, 4, 32):
        resolver = PartitionResolver([str(i) for i in range(n)])
        for _ in range(500):
            key = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(1, 40)))
            assert str(partition_for_key(key, n)) == resolver.get_partition_id_by_partition_key(key)


def test_sas_tokens_are_verified() -> None:
    token = generate_sas_token("sb://127.0.0.1:5672/hub", "RootManageSharedAccessKey", "SAS_KEY_VALUE")
    assert verify_sas(token, "RootManageSharedAccessKey", "SAS_KEY_VALUE") is None
    assert verify_sas(token, "RootManageSharedAccessKey", "other") == "bad signature"
    assert verify_sas(token, "Other", "SAS_KEY_VALUE") is not None
    assert verify_sas(token, "RootManageSharedAccessKey", "SAS_KEY_VALUE", now=2**40) == "token expired"
    assert verify_sas("Bearer x", "RootManageSharedAccessKey", "SAS_KEY_VALUE") is not None
