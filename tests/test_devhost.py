"""`marketflow host` parts that need no Event Hubs: the app's triggers, host.json, retry policies,
and batches built through azure-functions' own trigger converter, fed to the real functions."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost.bindings import event_hub_triggers, load_app
from devhost.host import HostError, connection_string, load_local_settings, namespace_of
from devhost.hostjson import EventHubsOptions, read_host_json
from devhost.invoke import invoke
from devhost.metadata import PartitionInfo, Received, to_event, to_events
from devhost.retry import RetryPolicy
from devhost.timespan import parse_timespan
from functions import runtime
from shared import topology
from shared.adapters import InMemoryDeadLetterSink, InMemoryPublisher
from shared.events import Signal, encode
from shared.samples import btcusdt_1m_paths

ROOT = Path(__file__).resolve().parents[1]


def test_the_app_triggers_are_the_topology() -> None:
    triggers = {t.function: t for t in event_hub_triggers(load_app("function_app", ROOT))}
    assert {"signals", "risk"} <= set(triggers)
    for t in triggers.values():
        hub = topology.hub(t.hub)
        assert t.consumer_group in hub.consumer_groups
        assert t.connection == topology.EVENTHUB_CONNECTION_SETTING
        assert t.many and t.data_type == "binary"
        assert t.retry is not None and t.retry.max_retry_count == -1
    assert triggers["signals"].hub == topology.MARKET_DATA.name
    assert triggers["risk"].hub == topology.SIGNALS.name


def test_loading_the_app_twice_gives_two_apps() -> None:
    # azure-functions builds an app's functions once; the host must not trip over an indexed app.
    first = event_hub_triggers(load_app("function_app", ROOT))
    second = event_hub_triggers(load_app("function_app", ROOT))
    assert [t.function for t in first] == [t.function for t in second]


def test_the_repo_host_json() -> None:
    options = read_host_json(ROOT / "host.json")
    doc = json.loads((ROOT / "host.json").read_text())["extensions"]["eventHubs"]
    assert options.max_event_batch_size == doc["maxEventBatchSize"]
    assert options.batch_checkpoint_frequency == doc["batchCheckpointFrequency"]
    assert options.initial_offset == doc["initialOffsetOptions"]["type"]


def test_host_json_defaults_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text('{"version": "2.0"}')
    assert read_host_json(path) == EventHubsOptions()
    assert EventHubsOptions().starting_position() == "-1"
    path.write_text('{"extensions": {"eventHubs": {"initialOffsetOptions": {"type": "fromEnqueuedTime", '
                    '"enqueuedTimeUtc": "2024-01-01T00:00:00Z"}, "maxWaitTime": "00:00:05"}}}')
    options = read_host_json(path)
    assert options.starting_position() == datetime(2024, 1, 1, tzinfo=UTC)
    assert options.max_wait_s == 5
    path.write_text('{"extensions": {"eventHubs": {"initialOffsetOptions": {"type": "fromTheMiddle"}}}}')
    with pytest.raises(ValueError, match=r"initialOffsetOptions\.type"):
        read_host_json(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read host\.json"):
        read_host_json(path)


@pytest.mark.parametrize(("text", "seconds"), [("00:00:01", 1), ("00:05:00", 300), ("1.02:03:04.5", 93784.5)])
def test_timespans(text: str, seconds: float) -> None:
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["5", "00:61:00", "a:b:c"])
def test_bad_timespans(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


def test_retry_delays() -> None:
    fixed = RetryPolicy.from_setting({"strategy": "fixed_delay", "max_retry_count": "3",
                                      "delay_interval": "00:00:02"})
    assert fixed is not None and list(fixed.delays()) == [2, 2, 2]
    backoff = RetryPolicy.from_setting({"strategy": "exponential_backoff", "max_retry_count": "-1",
                                        "minimum_interval": "00:00:01", "maximum_interval": "00:00:05"})
    assert backoff is not None
    endless = backoff.delays()
    assert [next(endless) for _ in range(6)] == [1, 2, 4, 5, 5, 5]
    assert RetryPolicy.from_setting(None) is None
    with pytest.raises(ValueError, match="unknown retry strategy"):
        RetryPolicy.from_setting({"strategy": "sometimes", "max_retry_count": "1"})


def _trigger(call: object, retry: RetryPolicy | None) -> object:
    from devhost.bindings import EventHubTrigger
    return EventHubTrigger("f", "events", "market-data", "signals", "EVENTHUB", True, "binary", retry, call)


def test_invoke_retries_then_succeeds() -> None:
    calls: list[int] = []

    def flaky(events: list[int]) -> None:
        calls.append(len(events))
        if len(calls) < 3:
            raise RuntimeError("transient")

    outcome = invoke(_trigger(flaky, RetryPolicy("fixed_delay", 5, delay_s=0.0)), [1, 2], threading.Event())
    assert outcome == (3, None, True)
    assert calls == [2, 2, 2]  # the same batch each time


def test_invoke_exhausted_policy_still_checkpoints() -> None:
    def broken(events: list[int]) -> None:
        raise ValueError("bad")

    outcome = invoke(_trigger(broken, RetryPolicy("fixed_delay", 2, delay_s=0.0)), [1], threading.Event())
    assert outcome.attempts == 3 and outcome.checkpoint and outcome.error == "ValueError: bad"
    assert invoke(_trigger(broken, None), [1], threading.Event()).attempts == 1


def test_shutdown_during_a_retry_wait_leaves_the_batch_unchecked() -> None:
    stop = threading.Event()
    stop.set()

    def broken(events: list[int]) -> None:
        raise ValueError("bad")

    outcome = invoke(_trigger(broken, RetryPolicy("exponential_backoff", -1, minimum_s=60, maximum_s=60)),
                     [1], stop)
    assert outcome.attempts == 1 and not outcome.checkpoint


def test_local_settings(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "from-file", "B": "b"}}))
    env = {"A": "from-env"}
    assert load_local_settings(path, env) == ["B"]
    assert env == {"A": "from-env", "B": "b"}
    with pytest.raises(HostError, match="no connection string in setting EVENTHUB"):
        connection_string("EVENTHUB", {})
    conn = "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=SECRETVALUE"
    assert connection_string("EVENTHUB", {"AzureWebJobsEVENTHUB": conn}) == conn
    assert namespace_of(conn) == "127.0.0.1:5672"
    path.write_text("[]")
    with pytest.raises(HostError, match="no \"Values\""):
        load_local_settings(path, {})


def _received(bodies: list[bytes], first_seq: int = 10) -> list[Received]:
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    return [Received(b, first_seq + i, str(100 * (first_seq + i)), t0, "BTCUSDT", {"marketflow.type": "kline"})
            for i, b in enumerate(bodies)]


def test_batches_carry_the_metadata_the_functions_read() -> None:
    partition = PartitionInfo("127.0.0.1", "market-data", "signals", "3")
    events = to_events(_received([b"a", b"b"]), partition)
    assert [e.get_body() for e in events] == [b"a", b"b"]
    assert [e.sequence_number for e in events] == [10, 11]
    assert [e.partition_key for e in events] == ["BTCUSDT", "BTCUSDT"]
    assert events[0].enqueued_time == datetime(2020, 1, 1, tzinfo=UTC)
    md = events[0].metadata
    assert md["PartitionContext"]["PartitionId"] == "3"
    assert md["PropertiesArray"] == [{"marketflow.type": "kline"}] * 2
    # runtime.to_delivery reads the partition from the same metadata the real host sends
    assert runtime.to_delivery(events[1]).partition_id == "3"
    single = to_event(_received([b"x"])[0], partition)
    assert single.get_body() == b"x" and single.sequence_number == 10 and single.partition_key == "BTCUSDT"


def test_the_real_signals_function_takes_host_batches() -> None:
    from shared.data import read_klines

    bars = read_klines(btcusdt_1m_paths()).bars
    publisher, dead = InMemoryPublisher(), InMemoryDeadLetterSink()
    runtime.configure(publisher=publisher, dead_letters=dead)
    try:
        triggers = {t.function: t for t in event_hub_triggers(load_app("function_app", ROOT))}
        signals = triggers["signals"]
        partition = PartitionInfo("127.0.0.1", signals.hub, signals.consumer_group, "0")
        received = _received([encode(b.to_kline()) for b in bars], first_seq=0)
        for i in range(0, len(received), 100):
            assert invoke(signals, to_events(received[i:i + 100], partition), threading.Event()).error is None
        out = publisher.events(topology.SIGNALS.name)
        assert out and all(isinstance(s, Signal) for s in out)
        assert not dead.all()
    finally:
        runtime.reset()


def test_http_functions_are_served(tmp_path: Path) -> None:
    import asyncio
    import socket
    import textwrap
    import urllib.request

    from devhost.bindings import index
    from devhost.http import serve

    (tmp_path / "httpapp.py").write_text(textwrap.dedent('''
        import azure.functions as func
        app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

        @app.route(route="echo/{name}", methods=["POST"])
        def echo(req: func.HttpRequest) -> func.HttpResponse:
            body = f"{req.route_params['name']}:{req.params.get('q')}:{req.get_body().decode()}"
            return func.HttpResponse(body, status_code=201, mimetype="text/plain")

        @app.route(route="health", auth_level=func.AuthLevel.ANONYMOUS, methods=["GET"])
        def health(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse('{"ok": true}', mimetype="application/json")
    '''))
    http = index(load_app("httpapp", tmp_path)).http
    assert [(h.function, h.route, h.methods) for h in http] == [("echo", "echo/{name}", ("POST",)),
                                                               ("health", "health", ("GET",))]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def exercise() -> list[tuple[int, bytes, str]]:
        runner = await serve(http, "127.0.0.1", port)

        def call(method: str, path: str, data: bytes | None = None) -> tuple[int, bytes, str]:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/{path}", data=data, method=method)
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                return e.code, e.read(), e.headers.get("Content-Type", "")
        try:
            return [await asyncio.to_thread(call, "POST", "echo/bob?q=1", b"hi"),
                    await asyncio.to_thread(call, "GET", "health"),
                    await asyncio.to_thread(call, "GET", "echo/bob"),
                    await asyncio.to_thread(call, "GET", "nothing")]
        finally:
            await runner.cleanup()

    echo, health, wrong_method, missing = asyncio.run(exercise())
    assert echo[:2] == (201, b"bob:1:hi")
    assert health[0] == 200 and json.loads(health[1]) == {"ok": True} and health[2].startswith("application/json")
    assert wrong_method[0] == 405 and missing[0] == 404
