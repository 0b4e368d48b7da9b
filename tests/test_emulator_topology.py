"""The emulator serves MarketFlow's topology by default, and MarketFlow's own publisher reaches it through
nothing but a connection string."""

from __future__ import annotations

from pathlib import Path

from emulator import BackgroundEmulator
from emulator.app import load_default
from shared import topology
from shared.adapters.azure import EventHubPublisher
from shared.data import read_klines
from shared.events import decode
from tests.emulator_support import receive

SAMPLE = Path(__file__).resolve().parents[1] / "shared" / "samples" / "BTCUSDT-1h-2021-Q1.csv"


def test_default_hubs_are_the_topology() -> None:
    served = {h.name: h for h in load_default().hubs}
    assert set(served) == set(topology.HUBS)
    for name, hub in topology.HUBS.items():
        assert served[name].partitions == hub.partitions
        assert set(hub.consumer_groups) | {"$Default"} == set(served[name].consumer_groups)
        assert served[name].retention_hours == hub.retention_hours


def test_the_publisher_reaches_the_emulator_by_connection_string_only() -> None:
    bars = read_klines([SAMPLE]).bars[:50]
    events = [b.to_kline() for b in bars]
    with BackgroundEmulator(load_default(), port=0, health_port=None) as emu:
        publisher = EventHubPublisher.from_settings(environ={topology.EVENTHUB_CONNECTION_SETTING:
                                                            emu.connection_string()})
        try:
            publisher.publish(topology.MARKET_DATA.name, events)
        finally:
            publisher.close()
        got = receive(emu.connection_string(topology.MARKET_DATA.name), len(events),
                      group=topology.consumer_group(topology.MARKET_DATA.name, "signals"))
    assert [decode(b"".join(e.body)) for e in got] == events
    assert {e.partition_key for e in got} == {b"BTCUSDT"}
    assert [e.message_id for e in got] == [ev.event_id for ev in events]
