"""HTTP functions: `health` (anonymous) and `trading_state` (function key).

`health` answers what an operator or a deployment gate needs without any secret: the package
version and commit, the functions, and a sanity check of each configuration item, naming the
settings and the form of a connection (connection string or identity) but never a value. It is
200 when every check passes, 503 otherwise.

`trading_state` reads and changes the shared trading state every risk engine and the executor
read (`shared.adapters.trading_state`): GET returns it; POST {"action": "halt" | "reduce" |
"resume", "by": who, "reason": why} changes it, compare-and-set, and every engine adopts the
change within `state_refresh_s`.
"""

import json
import time
import typing

import azure.functions as func

from functions import runtime

bp = func.Blueprint()

COMMIT_SETTINGS = ("MARKETFLOW_COMMIT", "SCM_COMMIT_ID")
_ACTIONS = {"halt": "HALTED", "reduce": "REDUCING", "resume": "ACTIVE"}
MAX_TEXT = 200


def _json(status: int, body: typing.Mapping[str, typing.Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, sort_keys=True), status_code=status, mimetype="application/json")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("marketflow")
    except PackageNotFoundError:
        return "unknown"


def _connection_check(setting: str, identity_property: str) -> dict[str, typing.Any]:
    from shared.adapters.azure.settings import ConfigurationError, resolve_connection

    try:
        conn = resolve_connection(setting, identity_property, runtime.env())
    except ConfigurationError as exc:
        return {"ok": False, "detail": str(exc)}
    return {"ok": True, "setting": conn.setting, "form": "identity" if conn.uses_identity else "connection string"}


def config_checks() -> dict[str, dict[str, typing.Any]]:
    """Each configuration item: ok, and what was found (setting names and forms, never values)."""
    from shared.adapters.azure.blob_documents import STATE_STORAGE_SETTING
    from shared.adapters.stores import STATE_DB_SETTING
    from shared.risk import RiskConfig, RiskConfigError

    env = runtime.env()
    checks: dict[str, dict[str, typing.Any]] = {
        "eventhub": _connection_check("EVENTHUB", "fullyQualifiedNamespace"),
        "dead_letters": _connection_check("DEADLETTER_STORAGE", "blobServiceUri"),
    }
    if env.get(STATE_DB_SETTING, "").strip() and not any(k.startswith(STATE_STORAGE_SETTING) for k in env):
        checks["state_store"] = {"ok": True, "setting": STATE_DB_SETTING, "form": "sqlite"}
    else:
        checks["state_store"] = _connection_check(STATE_STORAGE_SETTING, "blobServiceUri")
    try:
        handler = runtime.signal_handler_from_settings()
        checks["strategy"] = {"ok": True, "strategy": handler.strategy_name, "params": handler.params}
    except Exception as exc:  # a bad strategy setting: report it, do not crash the probe
        checks["strategy"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:MAX_TEXT]}
    try:
        cfg = RiskConfig()
        checks["risk"] = {"ok": True, "trading_state_floor": cfg.trading_state.value,
                          "state_refresh_s": cfg.state_refresh_s}
    except (RiskConfigError, ValueError) as exc:
        checks["risk"] = {"ok": False, "detail": str(exc)[:MAX_TEXT]}
    cash = env.get("MARKETFLOW_ACCOUNT_CASH", "").strip()
    try:
        ok = not cash or float(cash) >= 0
    except ValueError:
        ok = False
    checks["account_cash"] = {"ok": ok, "set": bool(cash)}
    checks["interval"] = {"ok": True, "interval": runtime.interval()}
    return checks


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Version, commit and configuration sanity; 503 when a check fails. No secret, ever."""
    env = runtime.env()
    commit = next((env[s] for s in COMMIT_SETTINGS if env.get(s, "").strip()), "unknown")
    checks = config_checks()
    ok = all(c["ok"] for c in checks.values())
    return _json(200 if ok else 503, {"status": "ok" if ok else "misconfigured", "version": _version(),
                                      "commit": commit, "checks": checks})


def _state_body(engine: typing.Any, now: int) -> dict[str, typing.Any]:
    state = engine.states.current(now)
    rec = engine.states.record
    return {"state": state.value, "who": rec.who, "why": rec.why, "changed_at": rec.changed_at,
            "version": rec.version,
            "locks": [{"source": str(lk.source), "state": lk.state.value, "why": lk.why, "until": lk.until}
                      for lk in rec.locks]}


@bp.function_name("trading_state")
@bp.route(route="trading_state", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def trading_state(req: func.HttpRequest) -> func.HttpResponse:
    """GET the shared trading state; POST {"action", "by", "reason"} to halt, reduce or resume."""
    from shared.adapters.trading_state import DocumentStateStore
    from shared.risk import RiskConfig, RiskEngine

    docs = runtime.documents()
    if docs is None:
        return _json(503, {"error": "no shared state store configured (STATE_STORAGE or MARKETFLOW_STATE_DB)"})
    now = int(time.time() * 1000)
    engine = RiskEngine(RiskConfig.replay(), store=DocumentStateStore(docs), now=now)
    if req.method == "GET":
        return _json(200, _state_body(engine, now))
    try:
        body = req.get_json()
    except ValueError:
        return _json(400, {"error": "the body must be JSON: {\"action\": \"halt|reduce|resume\", \"by\", \"reason\"}"})
    if not isinstance(body, dict):
        return _json(400, {"error": "the body must be a JSON object"})
    action, by, reason = body.get("action"), body.get("by"), body.get("reason")
    if action not in _ACTIONS:
        return _json(400, {"error": f"action must be one of {sorted(_ACTIONS)}"})
    for name, value in (("by", by), ("reason", reason)):
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            return _json(400, {"error": f"{name!r} is required: a non-empty string of at most {MAX_TEXT} characters"})
    assert isinstance(by, str) and isinstance(reason, str)
    who = f"http:{by.strip()}"
    if action == "halt":
        engine.kill(who, reason.strip(), now)
    else:
        engine.set_trading_state(_ACTIONS[action], who, reason.strip(), now)
    return _json(200, _state_body(engine, now))

