"""What the emulator adds over Microsoft's: persistence across restarts, retention, Capture files; and its
Config.json, health endpoint and command line."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.exceptions import AuthenticationError

from emulator import BackgroundEmulator, CaptureConfig, ConfigError, HubConfig, NamespaceConfig, parse_config
from emulator.capture import SCHEMA, parse_capture_time, read_capture
from tests.emulator_support import receive

ROOT = Path(__file__).resolve().parents[1]


def _send(cs: str, bodies: list[str], **kwargs: object) -> None:
    with EventHubProducerClient.from_connection_string(cs) as producer:
        batch = producer.create_batch(**kwargs)
        for b in bodies:
            ev = EventData(b)
            ev.properties = {"kind": "test", "n": len(b)}
            ev.message_id = f"m-{b}"
            batch.add(ev)
        producer.send_batch(batch)


def test_events_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    cfg = NamespaceConfig("ns", (HubConfig("keep", 2, ("$Default",)),))
    with BackgroundEmulator(cfg, port=0, health_port=None, data_dir=tmp_path) as emu:
        _send(emu.connection_string("keep"), [f"a{i}" for i in range(5)], partition_id="1")
        before = receive(emu.connection_string("keep"), 5, partition_id="1")
    # a torn last record (a crash mid-write) is dropped, the rest kept
    with open(tmp_path / "keep" / "1.log", "ab") as f:
        f.write(b"\x00\x00\x01\x00partial")
    with BackgroundEmulator(cfg, port=0, health_port=None, data_dir=tmp_path) as emu:
        cs = emu.connection_string("keep")
        after = receive(cs, 5, partition_id="1")
        _send(cs, ["b0"], partition_id="1")
        more = receive(cs, 6, partition_id="1")
    key = [(e.sequence_number, e.offset, e.enqueued_time, e.body_as_str(), e.message_id) for e in before]
    assert [(e.sequence_number, e.offset, e.enqueued_time, e.body_as_str(), e.message_id) for e in after] == key
    assert more[-1].sequence_number == 5 and more[-1].body_as_str() == "b0"
    assert int(more[-1].offset) > int(more[-2].offset)


def test_retention_drops_old_events() -> None:
    cfg = NamespaceConfig("ns", (HubConfig("short", 1, ("$Default",), retention_hours=1.5 / 3600),))
    with BackgroundEmulator(cfg, port=0, health_port=None) as emu:
        cs = emu.connection_string("short")
        _send(cs, ["old0", "old1"])
        time.sleep(1.6)
        _send(cs, ["new0"])
        dropped = emu.call(lambda: emu.emulator.namespace.expire())
        assert dropped == 2
        with EventHubProducerClient.from_connection_string(cs) as producer:
            props = producer.get_partition_properties("0")
        assert props["beginning_sequence_number"] == 2 and props["last_enqueued_sequence_number"] == 2
        assert [e.body_as_str() for e in receive(cs, 1, partition_id="0")] == ["new0"]


def test_capture_writes_avro_files_in_captures_layout_and_schema(tmp_path: Path) -> None:
    cfg = NamespaceConfig("capns", (HubConfig("cap", 2, ("$Default",), capture=CaptureConfig(True, 0.5, 10**9)),))
    with BackgroundEmulator(cfg, port=0, health_port=None, capture_dir=tmp_path) as emu:
        cs = emu.connection_string("cap")
        _send(cs, ["c0", "c1", "c2"], partition_key="BTCUSDT")
        sent = receive(cs, 3)
        deadline = time.monotonic() + 10
        while not list(tmp_path.rglob("*.avro")) and time.monotonic() < deadline:
            time.sleep(0.1)
    files = list(tmp_path.rglob("*.avro"))
    assert len(files) == 1
    rel = files[0].relative_to(tmp_path).parts
    assert rel[:2] == ("capns", "cap") and rel[2] in ("0", "1")
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{2}/\d{2}/\d{2}\.avro", "/".join(rel[3:]))
    import fastavro

    with open(files[0], "rb") as f:
        reader = fastavro.reader(f)
        schema = reader.writer_schema
    assert schema["name"] == "Microsoft.ServiceBus.Messaging.EventData"
    assert [x["name"] for x in schema["fields"]] == [x["name"] for x in SCHEMA["fields"]]
    records = read_capture(files[0])
    assert [r["Body"] for r in records] == [b"c0", b"c1", b"c2"]
    for r, e in zip(records, sent, strict=True):
        assert r["SequenceNumber"] == e.sequence_number and r["Offset"] == e.offset
        assert abs((parse_capture_time(r["EnqueuedTimeUtc"]) - e.enqueued_time).total_seconds()) < 1
        assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} (AM|PM)", r["EnqueuedTimeUtc"])
        assert r["Properties"] == {"kind": "test", "n": 2}
        assert r["SystemProperties"]["message-id"] == f"m-{r['Body'].decode()}"
        assert r["SystemProperties"]["x-opt-partition-key"] == "BTCUSDT"


def test_config_json_in_the_official_format() -> None:
    cfg = parse_config({"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": "emulatorNs1", "Entities": [
        {"Name": "eh1", "PartitionCount": "2", "ConsumerGroups": [{"Name": "cg1"}]}]}],
        "LoggingConfig": {"Type": "File"}}})
    assert cfg.name == "emulatorNs1"
    assert cfg.hubs == (HubConfig("eh1", 2, ("$Default", "cg1")),)
    for bad in ({}, {"UserConfig": {"NamespaceConfig": []}},
                {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Entities": [{"PartitionCount": "2"}]}]}},
                {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Entities": [{"Name": "x",
                                                                                     "PartitionCount": "99"}]}]}}):
        with pytest.raises(ConfigError):
            parse_config(bad)


def test_command_line_serves_config_and_health_and_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "Config.json"
    config.write_text(json.dumps({"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": "emulatorNs1",
                                  "Entities": [{"Name": "eh1", "PartitionCount": "3", "ConsumerGroups": []}]}]}}))
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "emulator", "--port", "0", "--health-port", "0",
                             "--config", str(config), "--log-level", "WARNING"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+); health on (\d+)", line)
        assert m, line
        port, health = int(m.group(1)), int(m.group(2))
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/health", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read()) == {"status": "healthy"}
        cs = (f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
              "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=eh1")
        with EventHubProducerClient.from_connection_string(cs) as producer:
            assert producer.get_partition_ids() == ["0", "1", "2"]
        bad = cs.replace("SAS_KEY_VALUE", "wrong")
        with EventHubProducerClient.from_connection_string(bad, retry_total=0) as producer, \
                pytest.raises(AuthenticationError, match="bad signature"):
            producer.get_partition_ids()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_bad_config_is_one_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "shared.cli", "emulator", "--config", str(tmp_path / "nope.json")],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("marketflow: error: no such config file")


def test_expired_events_stay_expired_across_a_restart(tmp_path: Path) -> None:
    cfg = NamespaceConfig("ns", (HubConfig("short", 1, ("$Default",), retention_hours=1.0 / 3600),))
    with BackgroundEmulator(cfg, port=0, health_port=None, data_dir=tmp_path) as emu:
        _send(emu.connection_string("short"), ["gone0", "gone1"])
        time.sleep(1.1)
        assert emu.call(lambda: emu.emulator.namespace.expire()) == 2
    # the small log was not compacted on the sweep; loading it skips what retention dropped
    with BackgroundEmulator(cfg, port=0, health_port=None, data_dir=tmp_path) as emu:
        _send(emu.connection_string("short"), ["kept"])
        got = receive(emu.connection_string("short"), 1, partition_id="0")
        assert [(e.sequence_number, e.body_as_str()) for e in got] == [(2, "kept")]
