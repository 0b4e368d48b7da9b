"""No secret reaches a log line, a metric, an error or a repr of the executor's objects.

The executor is built as `python -m aks_executor` builds it, from an environment full of secrets
(connection strings with their keys, Binance keys); then every object reachable from it is
repr'd, its metrics rendered, its readiness read, and log lines that try to print the secrets
(in the message, in extras, in a traceback) are formatted. The process-level grep of a real run's
output is in test_executor_process.py.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from aks_executor import logs
from aks_executor.main import build_runtime, register_connection_secrets
from aks_executor.secrets import binance_credentials
from aks_executor.settings import ServiceSettings
from shared.adapters.azure.keyvault import Secret, SecretResolver
from shared.adapters.azure.settings import ConfigurationError
from shared.adapters.binance.credentials import Credentials

SAS_KEY = "c2VjcmV0LXNhcy1rZXktZm9yLXRoZS1ldmVudC1odWJzLW5hbWVzcGFjZQ=="
ACCOUNT_KEY = "QUNDT1VOVC1LRVktdGhhdC1tdXN0LW5ldmVyLWJlLXByaW50ZWQtYW55d2hlcmU="
BINANCE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SECRETS = (SAS_KEY, ACCOUNT_KEY, BINANCE_KEY, BINANCE_SECRET)
STORAGE = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
           "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
ENV = {"EVENTHUB": f"Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey={SAS_KEY};"
                   "UseDevelopmentEmulator=true",
       "CHECKPOINT_STORAGE": STORAGE, "DEADLETTER_STORAGE": STORAGE,
       "BINANCE_API_KEY": BINANCE_KEY, "BINANCE_API_SECRET": BINANCE_SECRET}


HOLDERS = (SecretResolver, Secret, Credentials)


def reachable_reprs(root: Any, depth: int = 4) -> list[str]:
    """repr of `root` and of everything reachable through attributes, containers and slots."""
    seen: set[int] = set()
    out: list[str] = []

    def walk(obj: Any, level: int) -> None:
        if id(obj) in seen or level > depth or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            return
        seen.add(id(obj))
        try:
            out.append(repr(obj))
        except Exception as exc:  # a repr that fails must not print the secret in its error either
            out.append(f"{type(exc).__name__}: {exc}")
        children: list[Any] = []
        if isinstance(obj, HOLDERS):
            return  # the holders by design: their repr is checked, their insides are the secrets
        if isinstance(obj, dict):
            children += list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children += list(obj)
        else:
            children += list(getattr(obj, "__dict__", {}).values())
            for slot in getattr(type(obj), "__slots__", ()):
                if hasattr(obj, slot):
                    children.append(getattr(obj, slot))
        for child in children:
            if type(child).__module__.startswith(("shared", "aks_executor")) or isinstance(
                    child, (dict, list, tuple, set)):
                walk(child, level + 1)

    walk(root, 0)
    return out


def clean(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text[:200]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return ENV


def test_the_built_executor_shows_no_secret_in_any_repr_metric_or_probe(env: dict[str, str], tmp_path) -> None:
    resolver = SecretResolver(env)
    register_connection_secrets(resolver, env)
    runtime = build_runtime(ServiceSettings(venue="binance", state_dir=tmp_path / "state"), resolver)
    credentials = binance_credentials(resolver, env)
    assert credentials.api_key == BINANCE_KEY and credentials.secret == BINANCE_SECRET
    texts = reachable_reprs(runtime) + reachable_reprs(credentials) + reachable_reprs(resolver)
    assert len(texts) > 20  # it did walk the object graph
    texts.append(runtime.metrics.render().decode())
    texts.append(json.dumps(runtime.readiness.results()))
    clean(texts)
    assert set(SECRETS) <= set(resolver.known_values())


def test_log_lines_are_scrubbed_in_message_extras_and_tracebacks(env: dict[str, str]) -> None:
    resolver = SecretResolver(env)
    register_connection_secrets(resolver, env)
    binance_credentials(resolver, env)
    stream = io.StringIO()
    handler = logs.setup("DEBUG", secrets=resolver.known_values, stream=stream)
    try:
        log = logging.getLogger("marketflow.test")
        with logs.correlation("corr-1", "evt-1"):
            log.info("connecting with %s", env["EVENTHUB"])
            log.warning("key %s", BINANCE_KEY, extra={"secret": BINANCE_SECRET, "symbol": "BTCUSDT"})
            try:
                raise RuntimeError(f"signature failed for {BINANCE_SECRET} / {ACCOUNT_KEY}")
            except RuntimeError:
                log.exception("order failed")
        log.info("outside any event")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    assert records[0]["correlation_id"] == "corr-1" and records[0]["event_id"] == "evt-1"
    assert "correlation_id" not in records[3]
    assert records[1]["symbol"] == "BTCUSDT" and records[1]["secret"] == "***"
    assert "RuntimeError" in records[2]["exc"] and "***" in records[2]["exc"]
    clean(lines)


def test_missing_venue_credentials_are_one_error_naming_settings_only() -> None:
    resolver = SecretResolver({"BINANCE_API_KEY": BINANCE_KEY})
    with pytest.raises(ConfigurationError) as info:
        binance_credentials(resolver, {"BINANCE_API_KEY": BINANCE_KEY})
    assert "BINANCE_API_SECRET" in str(info.value)
    clean([str(info.value), repr(info.value)])
