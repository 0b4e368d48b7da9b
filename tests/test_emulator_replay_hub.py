"""`marketflow replay-hub` through the emulator: from Capture files, from a hub, from Binance files; ids, keys
and bodies kept, a `replay` property added, pacing honoured."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.eventhub import EventData, EventHubProducerClient

from emulator import BackgroundEmulator, CaptureConfig, HubConfig
from shared.cli import main
from shared.cli.replay_hub import Pacer
from shared.events import Kline
from tests.emulator_support import config, receive

SAMPLE = Path(__file__).resolve().parents[1] / "shared" / "samples" / "BTCUSDT-1h-2021-Q1.csv"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundEmulator]:
    cap = CaptureConfig(True, 0.3, 10**9)
    hubs = (HubConfig("src", 2, ("$Default",), capture=cap), HubConfig("dst", 2, ("$Default", "replay")),
            HubConfig("dst2", 2, ("$Default",)), HubConfig("dst3", 2, ("$Default",)))
    with BackgroundEmulator(config(*hubs), port=0, health_port=None,
                            capture_dir=tmp_path_factory.mktemp("capture")) as e:
        yield e


def _source_events(emu: BackgroundEmulator) -> list[tuple[str, str, str]]:
    sent = []
    with EventHubProducerClient.from_connection_string(emu.connection_string("src")) as producer:
        for key in ("BTCUSDT", "ETHUSDT"):
            batch = producer.create_batch(partition_key=key)
            for i in range(4):
                ev = EventData(f'{{"k":"{key}","i":{i}}}')
                ev.message_id = f"{key}-{i}"
                ev.properties = {"type": "kline"}
                batch.add(ev)
                sent.append((key, f"{key}-{i}", f'{{"k":"{key}","i":{i}}}'))
            producer.send_batch(batch)
    return sent


def _key(e) -> tuple[str, str, str]:
    return e.partition_key.decode(), e.message_id, e.body_as_str()


def test_replay_from_capture_files_and_from_a_hub(emu, capsys) -> None:
    sent = _source_events(emu)
    files: list[Path] = []
    deadline = time.monotonic() + 10
    while len(files) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        files = emu.call(lambda: list(emu.emulator.capture.files))
    assert len(files) == 2  # one per partition
    assert main(["replay-hub", "--to", "dst", "--connection", emu.connection_string(), "--capture",
                 *map(str, files)]) == 0
    assert "replayed 8 events into dst" in capsys.readouterr().out
    got = receive(emu.connection_string("dst"), 8, group="replay")
    assert sorted(_key(e) for e in got) == sorted(sent)
    assert {e.properties[b"replay"] for e in got} == {b"capture"}
    assert all(e.properties[b"type"] == b"kline" for e in got)
    # the same key lands on the same partition it came from, in order
    for key in ("BTCUSDT", "ETHUSDT"):
        assert [e.message_id for e in got if e.partition_key == key.encode()] == [f"{key}-{i}" for i in range(4)]

    assert main(["replay-hub", "--to", "dst2", "--connection", emu.connection_string(), "--from-hub", "src",
                 "--sequence", "2"]) == 0
    got = receive(emu.connection_string("dst2"), 4)
    assert sorted(_key(e) for e in got) == sorted(s for s in sent if int(s[1][-1]) >= 2)
    assert {e.properties[b"replay"] for e in got} == {b"hub:src"}


def test_replay_from_binance_files_keeps_the_event_ids(emu, capsys) -> None:
    assert main(["replay-hub", "--to", "dst3", "--connection", emu.connection_string(), "--binance",
                 str(SAMPLE)]) == 0
    n = int(capsys.readouterr().out.split()[1])
    assert n > 2000
    got = receive(emu.connection_string("dst3"), n, timeout=60)
    assert len(got) == n
    first = min(got, key=lambda e: Kline.model_validate_json(e.body_as_str()).open_time)
    k = Kline.model_validate_json(first.body_as_str())
    assert first.message_id == k.event_id == Kline.make_id("BTCUSDT", "1h", k.open_time)
    assert first.partition_key == b"BTCUSDT" and first.properties[b"replay"] == b"binance"


def test_pacing_and_bad_options(emu, capsys) -> None:
    pacer = Pacer(10.0)
    t = time.monotonic()
    for ms in (0, 1000, 2000):
        pacer.wait(ms)
    assert 0.19 <= time.monotonic() - t < 1.0
    assert main(["replay-hub", "--to", "dst", "--connection", "x", "--speed", "fast", "--binance", str(SAMPLE)]) == 2
    assert "--speed must be" in capsys.readouterr().err
    assert main(["replay-hub", "--to", "dst", "--connection", "x", "--binance", "nope.csv"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["replay-hub", "--to", "dst", "--connection", "x"]) == 2
