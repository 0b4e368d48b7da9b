"""Fuzzing the emulator's framing: 10,000+ random, truncated, mutated and oversized frames, each on its own
connection, each answered with an AMQP error and a close of that connection only, while a stock SDK
client keeps producing and consuming through the same server."""

from __future__ import annotations

import asyncio
import random
import struct
import threading
import time

from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub._pyamqp._decode import decode_frame

from emulator import BackgroundEmulator
from emulator.codec import Described, UInt, ULong, described_list
from tests.emulator_support import config, receive

AMQP = b"AMQP\x00\x01\x00\x00"
SASL = b"AMQP\x03\x01\x00\x00"
N_CASES = 10_400
CONCURRENCY = 32


def _frame(body: bytes, channel: int = 0, ftype: int = 0) -> bytes:
    return struct.pack(">IBBH", 8 + len(body), 2, ftype, channel) + body


OPEN = _frame(described_list(0x10, ["fuzz", None, UInt(65536), None, None, None, None, None, None, None]))
BEGIN = _frame(described_list(0x11, [None, UInt(0), UInt(100), UInt(100), UInt(10), None, None, None]))
ATTACH = _frame(described_list(0x12, [
    "l", UInt(0), False, None, None, Described(ULong(0x28), ["src"]), Described(ULong(0x29), ["h1"]),
    None, None, None, None, None, None, None]))
TRANSFER = _frame(described_list(0x14, [UInt(0), UInt(0), b"t", UInt(0), False, False, None, None, None, None, None])
                  + b"\x00\x53\x75\xa0\x03abc")
VALID = [BEGIN, ATTACH, TRANSFER, _frame(described_list(0x13, [UInt(0), UInt(9), UInt(0), UInt(9), None, None, None,
                                                              None, None, None, None]))]


def _case(rng: random.Random, i: int) -> tuple[str, bytes]:
    """(kind, bytes after the handshake): what one fuzz connection sends."""
    kind = ("random", "truncated", "oversized", "mutated", "garbage-size")[i % 5]
    if kind == "random":
        body = rng.randbytes(rng.randint(1, 120))  # an empty body would be a valid heartbeat
        return kind, _frame(body, channel=rng.randint(0, 3), ftype=rng.choice((0, 0, 0, 1, 7)))
    if kind == "truncated":
        whole = BEGIN + ATTACH + TRANSFER if rng.random() < 0.5 else rng.choice(VALID)
        bounds = {len(BEGIN), len(BEGIN) + len(ATTACH)}  # a cut there leaves whole, valid frames
        cut = rng.choice([c for c in range(1, len(whole)) if c not in bounds])
        data = whole[:cut]
        if rng.random() < 0.5 and cut > 8:  # size field agrees with the cut: the body itself is short
            data = struct.pack(">I", cut) + data[4:]
        return kind, data
    if kind == "oversized":
        if rng.random() < 0.5:
            return kind, struct.pack(">IBBH", rng.randint(65537, 2**32 - 1), 2, 0, 0) + rng.randbytes(16)
        big = 65536 + rng.randint(1, 4096)
        return kind, struct.pack(">IBBH", big, 2, 0, 0) + b"\x00" * (big - 8)
    if kind == "mutated":
        data = bytearray(rng.choice(VALID))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randint(8, len(data) - 1)
            data[pos] = rng.randint(0, 255)
        # a mutation can leave a valid frame (a flow with odd numbers): follow it with a sure error
        return kind, bytes(data) + _frame(b"\x00\x53\x99\x45")
    doff = rng.choice((0, 1, 200))
    return kind, struct.pack(">IBBH", rng.choice((0, 3, 7, 16)), doff, 0, 0) + rng.randbytes(8)


def _frames(data: bytes) -> list[tuple[int, list[object]]]:
    out = []
    pos = 0
    while pos + 8 <= len(data):
        size = struct.unpack_from(">I", data, pos)[0]
        if data[pos + 8:pos + size]:
            out.append(decode_frame(memoryview(data[pos + 8:pos + size])))
        pos += size
    return out


def _close_error(reply: bytes) -> object:
    """The error condition of the close frame in `reply` (after the header and open), read with the SDK's
    own frame decoder; None if there is none."""
    if not reply.startswith(AMQP):
        return None
    pos = 8
    while pos + 8 <= len(reply):
        size = struct.unpack_from(">I", reply, pos)[0]
        body = reply[pos + 8:pos + size]
        pos += size
        if not body:
            continue
        ftype, fields = decode_frame(memoryview(body))
        if ftype == 0x18:
            return fields[0][0] if fields[0] else None
    return None


async def _fuzz(port: int) -> dict[str, int]:
    rng = random.Random(20261202)
    cases = [_case(rng, i) for i in range(N_CASES)]
    failures: dict[str, int] = {}
    examples: list[tuple[str, bytes, bytes]] = []
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(kind: str, data: bytes) -> None:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(AMQP + OPEN + data)
            await writer.drain()
            writer.write_eof()
            reply = await asyncio.wait_for(reader.read(-1), 10)
            writer.close()
            condition = _close_error(reply)
            if not (isinstance(condition, bytes) and condition.startswith(b"amqp:")):
                failures[kind] = failures.get(kind, 0) + 1
                examples.append((kind, data[:40], reply[-60:]))

    await asyncio.gather(*(one(k, d) for k, d in cases))
    for e in examples[:5]:
        print(e)
    return failures


async def _pre_amqp(port: int) -> list[bytes]:
    """Garbage instead of a protocol header, and garbage SASL frames: the header reply, or a failed outcome."""
    replies = []
    inputs = (b"HTTP/1.1 GET /\r\n\r\n", b"AMQP\x01\x01\x00\x00", SASL + _frame(b"\x00\x53\x41\xc0\x01\x00", ftype=1),
              SASL + _frame(b"\xff\xff", ftype=1), SASL + _frame(b"\x45", ftype=0))
    for data in inputs:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        writer.write_eof()
        replies.append(await asyncio.wait_for(reader.read(-1), 10))
        writer.close()
    return replies


def test_bad_frames_close_only_their_own_connection_with_an_amqp_error() -> None:
    with BackgroundEmulator(config(), port=0, health_port=0) as emu:
        cs = emu.connection_string("h1")
        healthy: list[int] = []
        stop = threading.Event()

        def keep_producing() -> None:
            with EventHubProducerClient.from_connection_string(cs) as producer:
                while not stop.is_set():
                    producer.send_event(EventData(f"ok-{len(healthy)}"), partition_id="0")
                    healthy.append(1)
                    time.sleep(0.01)

        producer_thread = threading.Thread(target=keep_producing, daemon=True)
        producer_thread.start()
        errors_before = emu.call(lambda: emu.emulator.server.errors)
        t0 = time.monotonic()
        failures = asyncio.run(_fuzz(emu.emulator.port))
        elapsed = time.monotonic() - t0
        pre = asyncio.run(_pre_amqp(emu.emulator.port))
        stop.set()
        producer_thread.join(10)
        assert failures == {}, f"cases without an AMQP error close: {failures}"
        assert emu.call(lambda: emu.emulator.server.errors) - errors_before >= N_CASES
        assert pre[0] == SASL and pre[1] == SASL  # not AMQP: the header we speak, then close
        for r in pre[2:]:  # the mechanisms, then a failed sasl-outcome
            assert [(code, fields[0]) for code, fields in _frames(r[8:])][1:] in ([(0x44, 3)], [(0x44, 1)]), r
        # the SDK client kept being served throughout, and everything it sent is there
        assert len(healthy) > 10
        got = receive(cs, len(healthy), partition_id="0", timeout=20)
        assert len(got) == len(healthy)
        print(f"{N_CASES} fuzz connections in {elapsed:.1f} s")

