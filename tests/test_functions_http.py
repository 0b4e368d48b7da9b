"""The HTTP functions as registered: `health` (anonymous, no secret) and `trading_state`
(function key; the change reaches every engine sharing the store within state_refresh_s)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import azure.functions as func
import pytest
from azure.functions.decorators.function_app import Function
from eventhub_host import registered

from functions import runtime
from shared.adapters.documents import InMemoryDocumentStore
from shared.adapters.trading_state import DocumentStateStore
from shared.risk import RiskConfig, RiskEngine, TradingState

SECRET = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=TOPSECRETKEY123="


def fn(name: str) -> Function:
    f: Function = registered()[name]
    return f


def call(name: str, method: str = "GET", body: object | None = None) -> func.HttpResponse:
    user: Callable[[func.HttpRequest], func.HttpResponse] = fn(name).get_user_function()
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return user(func.HttpRequest(method=method, url=f"http://127.0.0.1/api/{name}", body=data))


@pytest.fixture
def docs() -> Iterator[InMemoryDocumentStore]:
    store = InMemoryDocumentStore()
    runtime.reset()
    runtime.configure(documents=store, environ={"EVENTHUB": SECRET, "DEADLETTER_STORAGE": "UseDevelopmentStorage=true",
                                                "STATE_STORAGE": "UseDevelopmentStorage=true",
                                                "MARKETFLOW_COMMIT": "abc1234", "MARKETFLOW_ACCOUNT_CASH": "10000"})
    yield store
    runtime.reset()


def test_the_http_bindings_and_auth_levels() -> None:
    health = json.loads(fn("health").get_function_json())["bindings"]
    state = json.loads(fn("trading_state").get_function_json())["bindings"]
    trig = {b["direction"]: b for b in health}["IN"]
    assert (trig["type"], trig["authLevel"], trig["route"]) == ("httpTrigger", "ANONYMOUS", "health")
    trig = {b["direction"]: b for b in state}["IN"]
    assert (trig["authLevel"], trig["route"], sorted(trig["methods"])) == ("FUNCTION", "trading_state", ["GET", "POST"])


def test_health_reports_version_commit_and_checks_without_secrets(docs: InMemoryDocumentStore) -> None:
    resp = call("health")
    text = resp.get_body().decode()
    assert resp.status_code == 200, text
    body = json.loads(text)
    assert body["status"] == "ok" and body["commit"] == "abc1234" and body["version"]
    assert body["checks"]["eventhub"] == {"ok": True, "setting": "EVENTHUB", "form": "connection string"}
    assert body["checks"]["strategy"]["strategy"] == "sma_cross"
    assert "TOPSECRET" not in text and "SharedAccessKey" not in text and "servicebus" not in text


def test_health_is_503_when_misconfigured() -> None:
    runtime.reset()
    runtime.configure(environ={"MARKETFLOW_STRATEGY": "no_such_strategy", "MARKETFLOW_ACCOUNT_CASH": "lots"})
    try:
        resp = call("health")
    finally:
        runtime.reset()
    body = json.loads(resp.get_body())
    assert resp.status_code == 503 and body["status"] == "misconfigured"
    assert not body["checks"]["eventhub"]["ok"] and not body["checks"]["strategy"]["ok"]
    assert not body["checks"]["account_cash"]["ok"]


def test_trading_state_get_and_post_reach_another_engine(docs: InMemoryDocumentStore) -> None:
    engine = RiskEngine(RiskConfig().model_copy(update={"state_refresh_s": 1.0}), store=DocumentStateStore(docs))
    assert engine.states.current(0) is TradingState.ACTIVE
    assert json.loads(call("trading_state").get_body())["state"] == "ACTIVE"

    resp = call("trading_state", "POST", {"action": "halt", "by": "alice", "reason": "exchange incident"})
    assert resp.status_code == 200
    body = json.loads(resp.get_body())
    assert (body["state"], body["who"]) == ("HALTED", "http:alice")
    assert "exchange incident" in body["why"]
    # The risk engine's clock is event time; its next refresh comes within state_refresh_s.
    assert engine.states.current(1_000) is TradingState.HALTED

    call("trading_state", "POST", {"action": "reduce", "by": "alice", "reason": "winding down"})
    assert engine.states.current(2_000) is TradingState.REDUCING
    call("trading_state", "POST", {"action": "resume", "by": "bob", "reason": "resolved"})
    assert engine.states.current(3_000) is TradingState.ACTIVE
    assert json.loads(call("trading_state").get_body())["who"] == "http:bob"


@pytest.mark.parametrize("body", [b"not json", {"action": "explode", "by": "a", "reason": "b"},
                                  {"action": "halt", "reason": "no who"}, {"action": "halt", "by": "a"},
                                  {"action": "halt", "by": "a", "reason": "x" * 500}, [1, 2]])
def test_trading_state_rejects_bad_requests_and_changes_nothing(docs: InMemoryDocumentStore, body: object) -> None:
    resp = call("trading_state", "POST", body)
    assert resp.status_code == 400
    assert "error" in json.loads(resp.get_body())
    assert docs.keys() == []


def test_trading_state_without_a_store_is_503() -> None:
    runtime.reset()
    runtime.configure(environ={})
    try:
        assert call("trading_state").status_code == 503
    finally:
        runtime.reset()
