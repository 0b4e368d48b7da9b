"""Shared helpers for the emulator's SDK compatibility suite: an emulator on a free loopback port, and
receiving with the stock sync SDK until a count is reached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator import BackgroundEmulator, HubConfig, NamespaceConfig

HUB = "h4"
HUBS = (HubConfig(HUB, 4, ("$Default", "cg1", "cg2")), HubConfig("h1", 1, ("$Default",)),
        HubConfig("keys", 4, ("$Default",)))


def config(*hubs: HubConfig) -> NamespaceConfig:
    return NamespaceConfig("emulatorNs1", hubs or HUBS)


@pytest.fixture(scope="module")
def emu() -> Iterator[BackgroundEmulator]:
    with BackgroundEmulator(config(), port=0, health_port=0) as e:
        yield e


def receive(conn_str: str, count: int, *, group: str = "$Default", timeout: float = 20.0,
            on_event: Callable[[Any, Any], None] | None = None, **kwargs: Any) -> list[Any]:
    """Events received with `EventHubConsumerClient.receive_batch` until `count` arrived (or timeout)."""
    from azure.eventhub import EventHubConsumerClient

    got: list[Any] = []
    done = threading.Event()
    client = EventHubConsumerClient.from_connection_string(conn_str, consumer_group=group, load_balancing_interval=0.5)

    def on_batch(ctx: Any, events: list[Any]) -> None:
        for ev in events:
            got.append(ev)
            if on_event is not None:
                on_event(ctx, ev)
        if len(got) >= count:
            done.set()

    kwargs.setdefault("starting_position", "-1")
    kwargs.setdefault("max_wait_time", 0.2)
    t = threading.Thread(target=client.receive_batch, kwargs=dict(on_event_batch=on_batch, max_batch_size=1000,
                                                                    **kwargs), daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < deadline:
        done.wait(0.05)
    client.close()
    t.join(10)
    return got


def wait_readers(emu: BackgroundEmulator, hub: str, group: str, count: int, timeout: float = 20.0) -> None:
    """Block until `count` receivers are attached to `hub` in `group` (over all partitions), as the server
    sees it: a receiver starting at `@latest` misses what is sent before it attached."""
    def attached() -> int:
        readers = emu.emulator.server.readers
        return sum(len(v) for k, v in readers.items() if k[0] == hub.lower() and k[1] == group.lower())

    deadline = time.monotonic() + timeout
    while emu.call(attached) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} receivers did not attach to {hub}/{group} in time")
        time.sleep(0.05)
