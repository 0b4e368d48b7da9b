"""Events per second through the emulator with the stock azure-eventhub SDK, at 1 and 4 partitions.

The emulator runs as its own process (as `marketflow emulator` does); the SDK producer runs in
this one. Per partition count: batched send (`send_batch` of batches already built); receive with
one sync consumer process per partition, started together once each is connected (how Event Hubs
consumers scale out: every process has its own interpreter, so they do not share one GIL); and,
in this process, receive with one sync client and with one async client over every partition (as
`marketflow host` consumes). Beside them: the SDK's own ceiling (building the same
`EventDataBatch`es with no server at all), build + send in one producer, and the emulator's own
cost (events per CPU-second of its process, read from /proc). Events are MarketFlow kline events
as the publisher sends them (canonical JSON, message id, content type, type property), keyed by
symbol; the 8 symbols fall two on each of 4 partitions.

In one process the SDK's pure-Python receive path shares one GIL: a thread per partition there was
slower than one client (about 20,000 against 23,000-27,000 events/s at 4 partitions, measured
while writing this bench). One sync client over several partitions receives from them in turn on
one thread, each call waiting up to `max_wait_time`, so a partition with nothing new holds up the
others: with the earlier 8 symbols, none of which fell on partition 3, it received 4,905 events/s.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

EVENTS = 20_000
RUNS = 3
BODY = json.dumps({"type": "kline", "schema_version": 1, "symbol": "BTCUSDT", "interval": "1m",
                   "open_time": 1700000000000, "close_time": 1700000059999, "open": "37000.10", "high": "37050.00",
                   "low": "36990.55", "close": "37020.00", "volume": "12.345", "trades": 321, "closed": True,
                   "event_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}, separators=(",", ":"))
# Two on each of 4 partitions (emulator.hashing, the service's key hash): no partition idles.
SYMBOLS = ("BTCUSDT", "ADAUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "DOGEUSDT", "BCHUSDT", "APTUSDT")


def _event(i: int) -> Any:
    from azure.eventhub import EventData

    ev = EventData(BODY)
    ev.content_type = "application/json"
    ev.message_id = f"id-{i}"
    ev.properties = {"type": "kline", "schema_version": 1}
    return ev


def build_batches(batch_factory: Any) -> list[Any]:
    """The batches a publisher sends: events grouped by symbol (the partition key), batches filled up."""
    batches = []
    per_key = EVENTS // len(SYMBOLS)
    for k, sym in enumerate(SYMBOLS):
        batch = batch_factory(sym)
        for i in range(per_key):
            ev = _event(k * per_key + i)
            try:
                batch.add(ev)
            except ValueError:
                batches.append(batch)
                batch = batch_factory(sym)
                batch.add(ev)
        batches.append(batch)
    return batches


def sdk_ceiling() -> float:
    """Events/s building the batches with no server (EventDataBatch's own limit, 1 MB like the link's)."""
    from azure.eventhub import EventDataBatch

    t = time.perf_counter()
    build_batches(lambda key: EventDataBatch(max_size_in_bytes=1024 * 1024, partition_key=key))
    return EVENTS / (time.perf_counter() - t)


class EmulatorProcess:
    """`python -m emulator` in its own process on a free loopback port (as `marketflow emulator`
    runs it): the hubs of `config` (a Config.json document), or MarketFlow's default topology."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.dir = tempfile.TemporaryDirectory()
        args = []
        if config is not None:
            cfg = Path(self.dir.name) / "Config.json"
            cfg.write_text(json.dumps(config))
            args = ["--config", str(cfg)]
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        root = Path(__file__).resolve().parents[1]
        env = dict(os.environ, PYTHONPATH=str(root))
        self.proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", str(self.port), "--health-port",
                                      "-1", *args, "--log-level", "WARNING"], stdout=subprocess.PIPE,
                                     env=env, cwd=root)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()

    def pin(self, cpu_index: int) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(self.proc.pid, {cpus[cpu_index % len(cpus)]})

    def cpu(self) -> float:
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def cs(self, hub: str | None = None) -> str:
        """The connection string: the namespace's, or with `EntityPath` for one hub."""
        return (f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName=RootManageSharedAccessKey;"
                "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true" + (f";EntityPath={hub}" if hub else ""))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self.dir.cleanup()


def _bench_hubs() -> dict[str, Any]:
    return {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": "bench",
            "Entities": [{"Name": f"b{n}-{r}", "PartitionCount": str(n), "ConsumerGroups": []}
                         for n in (1, 4) for r in range(RUNS)]}]}}


def _receive_until(client: Any, expected: int, **receive: Any) -> tuple[float, float]:
    """Receive with a sync consumer client, on a thread, until `expected` events have arrived; the
    `time.monotonic()` of the first and of the last (the client is closed after)."""
    got = [0]
    stamps: list[float] = []
    done = threading.Event()

    def on_batch(ctx: Any, events: list[Any]) -> None:
        if not stamps and events:
            stamps.append(time.monotonic())
        got[0] += len(events)
        if got[0] >= expected and not done.is_set():
            stamps.append(time.monotonic())
            done.set()

    th = threading.Thread(target=client.receive_batch, daemon=True, kwargs=dict(
        on_event_batch=on_batch, starting_position="-1", max_batch_size=1000, prefetch=1000, max_wait_time=0.5,
        **receive))
    th.start()
    done.wait(120)
    client.close()
    th.join(10)
    if not done.is_set():
        raise RuntimeError(f"received {got[0]} of {expected} events")
    return stamps[0], stamps[-1]


def _receive_sync(cs: str) -> tuple[float, float]:
    """Every event of the hub with one sync consumer client over all its partitions, in this process."""
    from azure.eventhub import EventHubConsumerClient

    return _receive_until(EventHubConsumerClient.from_connection_string(
        cs, consumer_group="$Default", load_balancing_interval=0.2), EVENTS)


def _receive_child(cs: str, partition: str, expected: int) -> None:
    """One consumer process (`python -m benchmarks.emulator_bench receive CS PARTITION N`): connects,
    says "ready", waits for a line on stdin, receives the partition's N events and prints the
    `time.monotonic()` of its first and last event as JSON."""
    from azure.eventhub import EventHubConsumerClient

    client = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default")
    client.get_partition_properties(partition)  # the SDK imported and the namespace reached first
    print("ready", flush=True)
    sys.stdin.readline()
    first, last = _receive_until(client, expected, partition_id=partition)
    print(json.dumps({"first": first, "last": last}), flush=True)


def _receive_processes(cs: str, partitions: list[str], counts: list[int]) -> tuple[float, float]:
    """Every event of the hub with one consumer process per partition (how Event Hubs consumers
    scale out; each process has its own interpreter, so they do not share one GIL), started
    together once all are connected: the earliest first and the latest last event."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.emulator_bench", "receive", cs, pid, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=root)
             for pid, n in zip(partitions, counts, strict=True)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a consumer process did not start")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out = proc.communicate(timeout=180)[0]
            if proc.returncode:
                raise RuntimeError(f"a consumer process failed (exit {proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return min(r["first"] for r in results), max(r["last"] for r in results)


async def _receive_async(cs: str) -> tuple[float, float]:
    """Every event of the hub with one async client over all its partitions: the `time.monotonic()`
    of the first and of the last event."""
    import asyncio

    from azure.eventhub.aio import EventHubConsumerClient

    got = [0]
    stamps: list[float] = []
    done = asyncio.Event()
    client = EventHubConsumerClient.from_connection_string(cs, consumer_group="$Default",
                                                           load_balancing_interval=0.2)

    async def on_batch(ctx: Any, events: list[Any]) -> None:
        if not stamps and events:
            stamps.append(time.monotonic())
        got[0] += len(events)
        if got[0] >= EVENTS and not done.is_set():
            stamps.append(time.monotonic())
            done.set()

    task = asyncio.create_task(client.receive_batch(on_event_batch=on_batch, starting_position="-1",
                                                    max_batch_size=1000, prefetch=1000, max_wait_time=0.5))
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await client.close()
        task.cancel()
    return stamps[0], stamps[-1]


def _rate(times: tuple[float, float]) -> float:
    """Events/s of the hub's EVENTS between a first and a last event."""
    return EVENTS / (times[1] - times[0])


def _one(server: EmulatorProcess, hub: str, partitions: int) -> dict[str, float]:
    import asyncio

    from azure.eventhub import EventHubProducerClient

    cs = server.cs(hub)
    producer = EventHubProducerClient.from_connection_string(cs)
    ids = producer.get_partition_ids()  # connect outside the timing
    assert len(ids) == partitions, ids
    t0 = time.perf_counter()
    batches = build_batches(lambda key: producer.create_batch(partition_key=key))
    t1 = time.perf_counter()
    c0 = server.cpu()
    for b in batches:
        producer.send_batch(b)
    t2 = time.perf_counter()
    c1 = server.cpu()
    counts = [producer.get_partition_properties(pid)["last_enqueued_sequence_number"] + 1 for pid in ids]
    producer.close()
    if min(counts) <= 0:
        raise RuntimeError(f"a partition received nothing: {dict(zip(ids, counts, strict=True))}")
    c2 = server.cpu()
    receive = _rate(_receive_processes(cs, ids, counts))
    c3 = server.cpu()
    return {"build_and_send": EVENTS / (t2 - t0), "send": EVENTS / (t2 - t1), "receive": receive,
            "receive_sync": _rate(_receive_sync(cs)), "receive_async": _rate(asyncio.run(_receive_async(cs))),
            "server_publish_per_cpu_s": EVENTS / max(c1 - c0, 1e-3),
            # the emulator's CPU over the whole receive (connects included): a floor of its rate
            "server_deliver_per_cpu_s": EVENTS / max(c3 - c2, 1e-3)}


def run(progress: Any = print) -> dict[str, Any]:
    out: dict[str, Any] = {"events": EVENTS, "runs": RUNS, "body_bytes": len(BODY)}
    server = EmulatorProcess(_bench_hubs())
    try:
        ceilings = []
        results: dict[int, list[dict[str, float]]] = {1: [], 4: []}
        for r in range(RUNS):
            ceilings.append(sdk_ceiling())
            for n in (1, 4):
                progress(f"emulator bench: run {r + 1}/{RUNS}, {n} partition(s)...")
                results[n].append(_one(server, f"b{n}-{r}", n))
        out["sdk_ceiling"] = statistics.median(ceilings)
        for n, rows in results.items():
            out[f"p{n}"] = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    finally:
        server.close()
    return out


TARGET = 20_000


def render(r: dict[str, Any], measured: str) -> str:
    """The markdown section for BENCHMARKS.md."""
    lines = [
        "## Event Hubs emulator",
        "",
        f"Measured {measured} UTC. {r['events']:,} kline events of {r['body_bytes']} bytes (message id, content type, "
        "type property), keyed by symbol (8 symbols, two on each of 4 partitions) and batched as the publisher "
        "batches them, through `python -m emulator` in its own process, with the stock azure-eventhub 5.15.1 SDK "
        f"(pure-Python AMQP); median of {r['runs']} runs. Send: `send_batch` of batches already built, one "
        "producer. Receive, a process per partition: one sync consumer process per partition (prefetch 1000), "
        "started together once connected, earliest first event to latest last event (how consumers scale out; "
        "they do not share a GIL). Receive, one client: a sync or an async client over every partition in one "
        "process (`marketflow host` consumes with the async one). The last two columns are the emulator's own "
        "cost, events per CPU-second of its process.",
        "",
        "| partitions | batched send (events/s) | receive, a process per partition | receive, one sync client "
        "| receive, one async client | build + send in one producer | emulator: publish per CPU-s "
        "| emulator: deliver per CPU-s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in (1, 4):
        p = r[f"p{n}"]
        lines.append(f"| {n} | {p['send']:,.0f} | {p['receive']:,.0f} | {p['receive_sync']:,.0f} "
                     f"| {p['receive_async']:,.0f} | {p['build_and_send']:,.0f} "
                     f"| {p['server_publish_per_cpu_s']:,.0f} | {p['server_deliver_per_cpu_s']:,.0f} |")
    through = min(min(r[f"p{n}"]["send"], r[f"p{n}"]["receive"]) for n in (1, 4))
    lines += [
        "",
        f"- Target: at least {TARGET:,} events/s on loopback through the emulator with the SDK (batched send, "
        "receive): " + (f"**met** at 1 and 4 partitions (the lower of send and receive at either count: "
                        f"{through:,.0f})." if through >= TARGET else
                        f"**not met** (the lower of send and receive: {through:,.0f} events/s)."),
        f"- The SDK's own ceiling, building the same batches with no server (`EventDataBatch.add`, which encodes "
        f"each event in pure Python to size it): **{r['sdk_ceiling']:,.0f} events/s**. A producer that builds and "
        "sends in one process gets the build + send column: the client's encoder, not the emulator, sets it.",
        "- In one process the SDK's receive shares one GIL (the one-client columns); one sync client over "
        "several partitions also waits on each in turn (`max_wait_time`), so an idle partition holds up the "
        "others: see the bench's docstring.",
        "- Publish-to-`signals`-handler latency in `marketflow up`: the `marketflow up` section.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["receive"]:
        _receive_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(json.dumps(run(), indent=2))
