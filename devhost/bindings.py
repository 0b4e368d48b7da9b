"""The Event Hub triggers of a v2 `FunctionApp`, read through azure-functions' public API."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .retry import RetryPolicy

EVENT_HUB_TRIGGER = "eventHubTrigger"
HTTP_TRIGGER = "httpTrigger"


class EventHubTrigger(NamedTuple):
    """One function's Event Hub trigger binding, as function.json would describe it."""

    function: str
    arg_name: str
    hub: str
    consumer_group: str
    connection: str  # app setting name (connection string, or <name>__fullyQualifiedNamespace)
    many: bool  # cardinality MANY: the function takes a list of events
    data_type: str  # binary, string or (unset) the host's default
    retry: RetryPolicy | None
    call: Callable[..., Any]


def load_app(module: str, app_dir: Path) -> Any:
    """Run `<app_dir>/<module>.py` (e.g. function_app.py) as a fresh module and return its `app`.

    A fresh module gives a fresh FunctionApp: azure-functions builds an app's functions only once
    (a second `get_functions()` on the same app object raises), and the caller may have indexed the
    app already (the tests do)."""
    root = app_dir.resolve()
    path = root / f"{module}.py"
    if not path.is_file():
        raise ValueError(f"{path}: no such Function App module")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the app imports its own packages (functions/, shared/)
    spec = importlib.util.spec_from_file_location(f"_devhost_{module}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    app = getattr(mod, "app", None)
    if app is None or not hasattr(app, "get_functions"):
        raise ValueError(f"{module}.app is not an azure.functions FunctionApp")
    return app


class HttpFunction(NamedTuple):
    """One HTTP-triggered function: served at /api/<route> for the listed methods."""

    function: str
    arg_name: str
    route: str
    methods: tuple[str, ...]  # empty: every method
    auth_level: str
    call: Callable[..., Any]


class AppIndex(NamedTuple):
    event_hub: list[EventHubTrigger]
    http: list[HttpFunction]


def index(app: Any) -> AppIndex:
    """The app's Event Hub and HTTP triggers, in registration order (indexes the app once)."""
    hubs: list[EventHubTrigger] = []
    http: list[HttpFunction] = []
    for function in app.get_functions():
        # function.json's form: enums as the host reads them ("MANY", "BINARY")
        bindings = json.loads(function.get_function_json()).get("bindings", [])
        spec = next((b for b in bindings if b.get("type") in (EVENT_HUB_TRIGGER, HTTP_TRIGGER)), None)
        if spec is None:
            continue
        if spec["type"] == HTTP_TRIGGER:
            name = function.get_function_name()
            http.append(HttpFunction(
                function=name, arg_name=str(spec["name"]), route=str(spec.get("route") or name).strip("/"),
                methods=tuple(str(m).upper() for m in spec.get("methods") or ()),
                auth_level=str(spec.get("authLevel", "FUNCTION")).upper(), call=function.get_user_function()))
            continue
        hubs.append(EventHubTrigger(
            function=function.get_function_name(), arg_name=str(spec["name"]), hub=str(spec["eventHubName"]),
            consumer_group=str(spec.get("consumerGroup") or "$Default"), connection=str(spec["connection"]),
            many=str(spec.get("cardinality", "one")).lower() == "many",
            data_type=str(spec.get("dataType", "")).lower(),
            retry=RetryPolicy.from_setting(function.get_settings_dict("retry_policy")),
            call=function.get_user_function()))
    return AppIndex(hubs, http)


def event_hub_triggers(app: Any) -> list[EventHubTrigger]:
    """Every function of `app` whose trigger is an Event Hub trigger, in registration order."""
    return index(app).event_hub
