"""`marketflow up`: the whole system on one machine, each part its own process, no Docker.

It starts Azurite (its own, on free ports, in memory), the Event Hubs emulator, the local Functions
host (`marketflow host`, the real registered functions), the executor service (`python -m
aks_executor`, paper venue) and publishes the given (or bundled) klines into `market-data` with the
azure-eventhub SDK, partition key = symbol, each event marked as replayed (`replay` property) so
every part checks it in event time. With `--pace lockstep` the next bar is published once every
consumer group of every hub has checkpointed everything published so far (`Settler`, over
devhost.settle); the `replay` mark travels with every event derived from the data (signals,
orders), so risk checks them in event time, and risk waits for the fill of each order it approved
to be in the account snapshot before its next decision, so the trades equal `marketflow replay`'s
on the same bars and options (tests/test_up.py). At the end it reads what the hubs carried
(signals, orders, executions), books the executions, marks the bars, and writes the same report
files as `marketflow replay`; its last line adds each trigger's enqueue-to-invocation latency (the
host's figures) and each bar's settle time. The children's logs are in `OUT.stack/logs`
(`--log-level INFO` shows every risk rejection).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import CliError

ROOT = Path(__file__).resolve().parents[2]
EMULATOR_KEY = "SAS_KEY_VALUE"  # the emulator's documented development key, not a secret
# Azurite's published development account (devstoreaccount1) and key, the same in every install.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EXECUTOR = "executor"  # the executor service's consumer group on every hub it reads


class Pace(NamedTuple):
    lockstep: bool
    speed: float  # multiple of real time; 0 = as fast as possible


def parse_pace(text: str) -> Pace:
    if text == "lockstep":
        return Pace(True, 0.0)
    if text == "realtime":
        return Pace(False, 1.0)
    if text.startswith("x"):
        try:
            speed = float(text[1:])
        except ValueError:
            speed = -1.0
        if speed > 0:
            return Pace(False, speed)
    raise CliError(f"--pace: expected lockstep, realtime or xN (a multiple of real time, N > 0), got {text!r}")


def azurite_connection(blob: int, queue: int, table: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{blob}/{AZURITE_ACCOUNT};"
            f"QueueEndpoint=http://127.0.0.1:{queue}/{AZURITE_ACCOUNT};"
            f"TableEndpoint=http://127.0.0.1:{table}/{AZURITE_ACCOUNT};")


def emulator_connection(port: int) -> str:
    return (f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
            f"SharedAccessKey={EMULATOR_KEY};UseDevelopmentEmulator=true")


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment every child starts from: this one without the settings that would point a
    part elsewhere (MARKETFLOW_*, EVENTHUB*, AzureWebJobs*), except the risk limits
    (MARKETFLOW_RISK_*), which `marketflow replay` honours too (--risk still wins)."""
    return {k: v for k, v in environ.items()
            if k.startswith("MARKETFLOW_RISK_") or not k.startswith(("MARKETFLOW_", "EVENTHUB", "AzureWebJobs"))}


class Status:
    """One status line, rewritten in place on a terminal, printed every few seconds elsewhere."""

    def __init__(self, stream: Any = None) -> None:
        # sys.stderr as it is now, not as it was at import (a test's capture may have closed that one)
        self._stream = stream = sys.stderr if stream is None else stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.5 if self._tty else 5.0):
            return
        self._last = now
        if self._tty:
            self._stream.write("\r\x1b[2K" + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")


def _read_hub(conn: str, hub: str, heads: Mapping[str, int], timeout_s: float = 60.0) -> list[bytes]:
    """Every event body of `hub` up to `heads` (partition -> last sequence), through `$Default`."""
    from azure.eventhub import EventHubConsumerClient

    bodies: dict[str, list[tuple[int, bytes]]] = {pid: [] for pid in heads}
    wanted = {pid: last for pid, last in heads.items() if last >= 0}
    if not wanted:
        return []
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group="$Default", eventhub_name=hub)
    deadline = time.monotonic() + timeout_s
    done: set[str] = set()

    def on_batch(context: Any, events: list[Any]) -> None:
        pid = context.partition_id
        for e in events:
            if e.sequence_number <= wanted.get(pid, -1):
                bodies[pid].append((e.sequence_number, b"".join(e.body)))
        if pid in wanted and bodies[pid] and bodies[pid][-1][0] >= wanted[pid]:
            done.add(pid)
        if done >= set(wanted) or time.monotonic() > deadline:
            client.close()

    with client:
        client.receive_batch(on_batch, max_batch_size=500, max_wait_time=1.0, starting_position="-1")
    if not done >= set(wanted):
        raise CliError(f"reading hub {hub} back timed out after {timeout_s:.0f} s")
    return [body for pid in sorted(bodies) for _, body in sorted(bodies[pid])]


def consumers(triggers: Sequence[Any]) -> dict[str, tuple[str, ...]]:
    """hub -> the consumer groups something in the stack reads it with: the Function App's Event Hub
    triggers and the executor's groups (from the topology)."""
    from shared import topology

    found: dict[str, list[str]] = {}
    for t in triggers:
        found.setdefault(t.hub, []).append(t.consumer_group)
    for name, hub in topology.HUBS.items():
        if EXECUTOR in hub.consumer_groups:
            found.setdefault(name, []).append(EXECUTOR)
    return {hub: tuple(dict.fromkeys(groups)) for hub, groups in found.items()}


def _checkpoints(blob_service: Any) -> list[dict[tuple[str, str, str], int]]:
    """The checkpoints of the host's and the executor's checkpoint stores."""
    from devhost.host import CHECKPOINT_CONTAINER as HOST_CONTAINER
    from devhost.settle import checkpoints
    from shared import topology

    saved = []
    for name in (HOST_CONTAINER, topology.CHECKPOINT_CONTAINER):
        container = blob_service.get_container_client(name)
        try:
            saved.append(checkpoints(container))
        except Exception:  # the container appears with the first checkpoint
            saved.append({})
    return saved


def _settled(blob_service: Any, hubs: Any, groups: Mapping[str, Sequence[str]]) -> tuple[bool, list[Any]]:
    """All consumer groups caught up? Checkpoints are read before the heads (see devhost.settle)."""
    from devhost.settle import lags

    result = lags(hubs.heads(), groups, _checkpoints(blob_service))
    return all(g.lag == 0 for g in result), result


class Settler:
    """The lockstep settle check, cheap enough to poll: the heads are read only once the
    checkpoints have caught up with the heads last seen, and then only the symbol's partitions.

    Each head read is a `$management` request per partition, and the SDK opens a connection for
    each (about 400 ms against the emulator, mostly its own 50 ms polling), whereas the
    checkpoints are one blob listing (about 20 ms). So the heads last read are kept; the
    partition the symbol's market data goes to is learned from its first send (this publisher is
    the hub's only producer: each send adds one event there), and every hub with as many
    partitions routes the symbol (every event's partition key) to the same one (the service
    hashes the key alone). The checkpoints are polled until every group has reached the kept
    heads; only then are the heads of those partitions read, after the checkpoints (as
    `_settled` does): settled when they did not move, else go on with them. `verify()` reads
    every partition, to show nothing went elsewhere.
    """

    def __init__(self, blob_service: Any, hubs: Any, groups: Mapping[str, Sequence[str]],
                 partitions: Mapping[str, int]) -> None:
        self.blob_service = blob_service
        self.hubs = hubs
        self.groups = groups
        self.partitions = dict(partitions)
        self.known: dict[str, dict[str, int]] = hubs.heads()
        self.watched: dict[str, list[str]] | None = None  # hub -> partitions read by check()
        self.head_reads = 0

    def sent(self, hub: str) -> None:
        """One event was sent to `hub` (always with the same partition key)."""
        if self.watched is not None:
            self.known[hub][self.watched[hub][0]] += 1
            return
        before = self.known[hub]
        self.known = self.hubs.heads()  # the first time: find out where it went
        self.head_reads += 1
        moved = [p for p, last in self.known[hub].items() if last > before.get(p, -1)]
        if len(moved) == 1:
            count = self.partitions[hub]
            self.watched = {h: ([moved[0]] if n == count else [str(p) for p in range(n)])
                            for h, n in self.partitions.items()}

    def check(self) -> tuple[bool, list[Any]]:
        from devhost.settle import lags

        saved = _checkpoints(self.blob_service)
        result = lags(self.known, self.groups, saved)
        if any(g.lag for g in result):
            return False, result
        fresh = self.hubs.heads(self.watched)
        self.head_reads += 1
        heads = {hub: {**parts, **fresh.get(hub, {})} for hub, parts in self.known.items()}
        moved = heads != self.known
        self.known = heads
        return (False, lags(heads, self.groups, saved)) if moved else (True, result)

    def verify(self) -> None:
        """Raise when a partition the check did not read has events it did not count."""
        every = self.hubs.heads()
        strays = [f"{hub}/{pid}" for hub, parts in every.items() for pid, last in parts.items()
                  if last != self.known[hub][pid]]
        if strays:
            raise CliError(f"events on partitions the lockstep settle did not watch: {', '.join(strays)}")


def run_up(args: argparse.Namespace, status: Status) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient

    from devhost.bindings import index, load_app
    from devhost.host import CHECKPOINT_CONTAINER as HOST_CONTAINER
    from devhost.hubs import Hubs
    from devhost.stack import Stack, StackError, azurite_command, free_port
    from shared import topology
    from shared.data import DataError, read_klines
    from shared.report.folder import OutError, check_out
    from shared.samples import btcusdt_1m_paths
    from shared.strategies import StrategyConfigError, create, parse_params

    pace = parse_pace(args.pace)
    if args.cash is not None and not (0 < args.cash < float("inf")):
        raise CliError("--cash must be a finite number above 0")
    if not 0 <= args.commission < 1:
        raise CliError("--commission must be in [0, 1)")
    try:
        params = parse_params(args.param or [])
        create(args.strategy, params)
    except StrategyConfigError as exc:
        raise CliError(f"--strategy/--param: {exc}") from None
    sources = [Path(s) for s in args.source] if args.source else btcusdt_1m_paths()
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise CliError(f"--source: no such file: {', '.join(missing)}")
    try:
        series = read_klines(sources, symbol=args.symbol)
    except DataError as exc:
        raise CliError(f"bad market data: {exc}") from None
    bars = series.bars[: args.limit] if args.limit else series.bars
    groups = consumers(index(load_app("function_app", ROOT)).event_hub)
    out = Path(args.out)
    try:
        check_out(out)  # before anything starts: a report folder we may (re)write
    except OutError as exc:
        raise CliError(f"--out: {exc}") from None
    # The processes' logs and state, beside the report folder and kept for a look after the run.
    work = out.parent / f"{out.name}.stack"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stack = Stack(log_dir=work / "logs")
    py = sys.executable
    env = child_env(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        blob, queue, table = free_port(), free_port(), free_port()
        status.show("starting azurite...", force=True)
        stack.start("azurite", [*azurite_command(ROOT / ".azurite"), "--blobPort", str(blob), "--queuePort",
                                str(queue), "--tablePort", str(table)],
                    env, wait_port=table, cwd=work)
        storage = azurite_connection(blob, queue, table)
        blob_service = BlobServiceClient.from_connection_string(storage)
        for container in (HOST_CONTAINER, topology.CHECKPOINT_CONTAINER, topology.DEAD_LETTER_CONTAINER):
            blob_service.create_container(container)  # provisioned by the infrastructure in Azure
        amqp, health = free_port(), free_port()
        status.show("starting the event hubs emulator...", force=True)
        stack.start("emulator", [py, "-m", "emulator", "--port", str(amqp), "--health-port", str(health),
                                 "--log-level", "WARNING"], env, wait_port=amqp)
        hubs = emulator_connection(amqp)
        shared_env = {**env, topology.EVENTHUB_CONNECTION_SETTING: hubs, "AzureWebJobsStorage": storage,
                      "DEADLETTER_STORAGE": storage, "CHECKPOINT_STORAGE": storage,
                      "MARKETFLOW_STRATEGY": args.strategy,
                      "MARKETFLOW_STRATEGY_PARAMS": " ".join(f"{k}={v}" for k, v in params.items()),
                      "MARKETFLOW_ACCOUNT_CASH": str(args.cash), "MARKETFLOW_PAPER_COMMISSION": str(args.commission),
                      "STATE_STORAGE": storage}
        for pair in args.risk or []:
            key, _, value = pair.partition("=")
            shared_env[f"MARKETFLOW_RISK_{key.strip().upper()}"] = value.strip()
        http = free_port()
        status.show("starting the functions host...", force=True)
        stack.start("functions", [py, "-m", "shared.cli", "host", "--app-dir", str(ROOT), "--port", str(http),
                                  "--log-level", args.log_level], shared_env, wait_port=http)
        executor_http = free_port()
        status.show("starting the executor...", force=True)
        stack.start("executor", [py, "-m", "aks_executor"],
                    {**shared_env, "MARKETFLOW_VENUE": "paper", "MARKETFLOW_HTTP_HOST": "127.0.0.1",
                     "MARKETFLOW_HTTP_PORT": str(executor_http), "MARKETFLOW_LEASE": "file",
                     "MARKETFLOW_START_POSITION": "earliest", "MARKETFLOW_CLOCK": "event",
                     "MARKETFLOW_STATE_DIR": str(work / "executor"), "LOG_LEVEL": args.log_level},
                    wait_port=executor_http)
        clients = Hubs(hubs, {name: hub.partitions for name, hub in topology.HUBS.items()})
        status.show("waiting for every consumer to claim its partitions...", force=True)
        _wait_claimed(blob_service, groups, stack, args.settle_timeout * 3)
        settles: list[float] = []
        publishing = time.monotonic()
        try:
            published = _publish(bars, clients, blob_service, groups, pace, stack, status, args.settle_timeout,
                                 _event_data,
                                 f"http://127.0.0.1:{executor_http}/metrics", settles)
            publish_s = time.monotonic() - publishing
            heads = clients.heads()
        finally:
            clients.close()
        latency = host_latency(f"http://127.0.0.1:{http}/admin/host/status")
        status.show("reading the hubs back...", force=True)
        carried = {hub: _read_hub(hubs, hub, heads[hub]) for hub in (topology.SIGNALS.name, topology.ORDERS.name,
                                                                      topology.EXECUTIONS.name)}
    except StackError as exc:
        raise CliError(str(exc)) from None
    finally:
        status.show("stopping...", force=True)
        stack.stop()
        status.done()
    result = _result(bars, series.symbol, args, params, carried, published)
    from shared.report import summarize, write_report

    write_report(result, out)
    summary = summarize(result)
    return {"bars": published, "summary": summary, "logs": str(work / "logs"),
            "hub_events": {hub: len(v) for hub, v in carried.items()},
            "latency_ms": latency, "settle_ms": percentiles(settles), "publish_s": round(publish_s, 1)}


def percentiles(values: Sequence[float]) -> dict[str, float | int]:
    """n, p50, p99 and max (nearest rank), in the unit of `values`."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))], 1)
    return {"n": len(ordered), "p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1], 1)}


def host_latency(status_url: str) -> dict[str, Any]:
    """Function -> latency from enqueue at the hub to the invocation (the host's own figures)."""
    import urllib.request

    try:
        with urllib.request.urlopen(status_url, timeout=5) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):
        return {}
    return {name: f.get("latency_ms", {}) for name, f in doc.get("functions", {}).items()}


def _event_data(event: Any) -> Any:
    """The publisher's own wire form, marked as replayed history (checked in event time)."""
    from shared import telemetry
    from shared.adapters.azure import to_event_data
    from shared.adapters.tracing import new_trace

    data = to_event_data(event)
    data.properties["replay"] = "up"
    data.properties.update(new_trace(telemetry.tracer(), "up publish", {"messaging.system": "eventhubs"}))
    return data


def _wait_claimed(blob_service: Any, groups: Mapping[str, Sequence[str]], stack: Any, timeout_s: float) -> None:
    """Until every (hub, group) pair the stack consumes has an owner for each of its partitions."""
    from devhost.host import CHECKPOINT_CONTAINER as HOST_CONTAINER
    from devhost.settle import owned
    from shared import topology

    wanted = {(hub.lower(), g.lower(), str(p)) for hub, gs in groups.items() for g in gs
              for p in range(topology.hub(hub).partitions)}
    deadline = time.monotonic() + timeout_s
    while True:
        have: set[tuple[str, str, str]] = set()
        for name in (HOST_CONTAINER, topology.CHECKPOINT_CONTAINER):  # created by run_up
            have |= owned(blob_service.get_container_client(name))
        if wanted <= have:
            return
        stack.check()
        if time.monotonic() > deadline:
            missing = sorted({f"{g}@{h}" for h, g, _ in wanted - have})
            raise CliError(f"consumers did not claim their partitions within {timeout_s:.0f} s: {', '.join(missing)}")
        time.sleep(0.5)


def trading_state(metrics_url: str) -> str:
    """The executor's trading state, from its Prometheus enum gauge (`?` when it cannot be read)."""
    import urllib.request

    try:
        with urllib.request.urlopen(metrics_url, timeout=2) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return "?"
    for line in text.splitlines():
        if "_trading_state{" in line and line.rstrip().endswith(" 1.0"):
            return line.split('="', 1)[1].split('"', 1)[0]
    return "?"


def status_line(done: int, total: int, elapsed_s: float, lags: Sequence[Any], state: str = "?") -> str:
    """Bars published, events per second per hub, what each stage produced, and consumer lag."""
    from shared import topology

    elapsed_s = max(elapsed_s, 1e-9)
    counts: dict[str, int] = {}
    for g in lags:
        counts[g.hub] = sum(last + 1 for last in g.last_sequence.values())
    rates = " ".join(f"{hub} {n / elapsed_s:,.1f}/s" for hub, n in counts.items())
    lag = sum(g.lag for g in lags)
    return (f"bar {done}/{total} | {rates} | signals {counts.get(topology.SIGNALS.name, 0)} orders "
            f"{counts.get(topology.ORDERS.name, 0)} reports {counts.get(topology.EXECUTIONS.name, 0)} | lag {lag} "
            f"| trading {state}")


def _publish(bars: Sequence[Any], hubs: Any, blob_service: Any,
             groups: Mapping[str, Sequence[str]], pace: Pace, stack: Any,
             status: Status, settle_timeout: float, to_data: Callable[[Any], Any], metrics_url: str = "",
             settles: list[float] | None = None) -> int:
    """Publish `bars`; in lockstep each one once the pipeline settled the last (the ms each bar
    took from its send to settled go to `settles`)."""
    from shared import topology

    started = time.monotonic()
    first_time = bars[0].close_time if bars else 0
    settler = Settler(blob_service, hubs, groups, {n: h.partitions for n, h in topology.HUBS.items()}
                      ) if pace.lockstep else None
    for i, bar in enumerate(bars):
        if pace.speed > 0:
            due = started + (bar.close_time - first_time) / 1000 / pace.speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        kline = bar.to_kline()
        sent = time.monotonic()
        hubs.send(topology.MARKET_DATA.name, kline.symbol, [to_data(kline)])
        lags: list[Any] = []
        if settler is not None:
            settler.sent(topology.MARKET_DATA.name)
            deadline = time.monotonic() + settle_timeout
            while True:
                settled, lags = settler.check()
                if settled:
                    if settles is not None:
                        settles.append((time.monotonic() - sent) * 1000)
                    break
                stack.check()
                if time.monotonic() > deadline:
                    behind = ", ".join(f"{g.group}@{g.hub}={g.lag}" for g in lags if g.lag)
                    raise CliError(f"the pipeline did not settle bar {i + 1} within {settle_timeout:.0f} s "
                                   f"(behind: {behind}); logs: {stack.log_dir}")
                time.sleep(0.01)
        else:
            stack.check()
            if i % 50 == 0 or i == len(bars) - 1:
                _, lags = _settled(blob_service, hubs, groups)
        if lags and (i % 25 == 0 or i == len(bars) - 1):
            state = trading_state(metrics_url) if metrics_url else "?"
            status.show(status_line(i + 1, len(bars), time.monotonic() - started, lags, state), force=True)
    if settler is not None:
        settler.verify()
    else:  # let the pipeline finish what was published
        deadline = time.monotonic() + settle_timeout
        while not _settled(blob_service, hubs, groups)[0]:
            stack.check()
            if time.monotonic() > deadline:
                raise CliError(f"the pipeline did not settle within {settle_timeout:.0f} s after the last bar")
            time.sleep(0.05)
    return len(bars)


def _result(bars: Sequence[Any], symbol: str, args: argparse.Namespace, params: Mapping[str, Any],
            carried: Mapping[str, list[bytes]], published: int) -> Any:
    """A ReplayResult from what the hubs carried: executions booked in event time, bars marked."""
    from shared import topology
    from shared.events import ExecutionReport, OrderIntent, Signal, decode_as
    from shared.pipeline.replay import ReplayResult
    from shared.portfolio import PositionBook

    signals = sorted((decode_as(b, Signal) for b in carried[topology.SIGNALS.name]), key=lambda s: s.event_time)
    intents = sorted((decode_as(b, OrderIntent) for b in carried[topology.ORDERS.name]), key=lambda s: s.event_time)
    reports = sorted((decode_as(b, ExecutionReport) for b in carried[topology.EXECUTIONS.name]),
                     key=lambda r: r.event_time)
    book = PositionBook(cash=args.cash)
    equity: list[float] = []
    trades: list[Any] = []
    fills = iter([r for r in reports if r.fills])
    pending = next(fills, None)
    for bar in bars[:published]:
        while pending is not None and pending.event_time <= bar.open_time:
            trades.extend(book.apply(pending))
            pending = next(fills, None)
        equity.append(book.mark(bar.symbol, bar.close, bar.close_time))
    return ReplayResult(symbol=symbol, strategy=args.strategy, params=dict(params), cash=args.cash,
                        commission=args.commission, bars=bars[:published], equity=equity, trades=trades,
                        signals=signals, decisions=[], intents=intents, reports=reports,
                        open_position=book.position(symbol), final_equity=equity[-1] if equity else args.cash,
                        events=published)


def cmd_up(args: argparse.Namespace) -> int:
    status = Status()
    try:
        outcome = run_up(args, status)
    except KeyboardInterrupt:
        print("marketflow: interrupted; every process of the stack was stopped", file=sys.stderr)
        return 130
    summary = outcome["summary"]
    print(json.dumps({"bars": outcome["bars"], "hub_events": outcome["hub_events"],
                      "latency_ms": outcome["latency_ms"], "settle_ms": outcome["settle_ms"],
                      "publish_s": outcome["publish_s"],
                      "trades": summary.get("n_trades"), "return_pct": summary.get("return_pct"),
                      "final_equity": summary.get("equity_final"), "out": args.out, "logs": outcome["logs"]},
                     default=str))
    return 0


def register(sub: Any) -> None:
    """Add `marketflow up`."""
    p = sub.add_parser("up", help="the whole system locally: Azurite, Event Hubs emulator, Functions host, "
                       "executor, market data", description=__doc__)
    p.add_argument("--source", nargs="+", metavar="PATH", help="kline files (default: the bundled BTCUSDT 1m)")
    p.add_argument("--symbol", help="symbol (default: from the file name)")
    p.add_argument("--strategy", default="sma_cross", help="strategy (default %(default)s)")
    p.add_argument("--param", action="append", metavar="K=V", help="strategy parameter, repeatable")
    p.add_argument("--cash", type=float, default=10_000.0, help="starting quote balance (default %(default)s)")
    p.add_argument("--commission", type=float, default=0.001, help="paper commission per side (default %(default)s)")
    p.add_argument("--risk", action="append", metavar="KEY=VALUE", help="risk limit for every engine, repeatable")
    p.add_argument("--pace", default="lockstep", help="lockstep (default: next bar once the pipeline settled), "
                   "realtime, or xN (N times real time)")
    p.add_argument("--limit", type=int, help="publish only the first N bars")
    p.add_argument("--settle-timeout", type=float, default=60.0, help="seconds a bar may take to settle")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="log level of the functions host and the executor (logs in OUT.stack/logs; default "
                   "%(default)s)")
    p.add_argument("--out", required=True, help="report folder (the same files as `marketflow replay`)")
    p.set_defaults(func=cmd_up)
