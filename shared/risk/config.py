"""Risk configuration: every limit with a documented default, from environment, a file or overrides.

Precedence, highest first: explicit values (`with_overrides`, the CLI's `--risk KEY=VALUE`), the
environment (`MARKETFLOW_RISK_` + the key in upper case), a JSON or TOML file (path in
`MARKETFLOW_RISK_FILE`, or `RiskConfig.load(path)`), then the defaults below.

The defaults are deliberately generous: they stop runaway and fat-finger failures (duplicates,
stale data, rate floods, exchange bans, absurd notionals, a halved account) without binding on an
ordinary strategy run such as `marketflow run`. Tighten them for live money; docs/risk.md lists
every key with a suggested live value. A value of 0 disables a numeric limit, as Binance's own
filters do. `RiskConfig.replay()` is the profile a library replay uses when given no config.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .states import TradingState

FILE_ENV = "MARKETFLOW_RISK_FILE"
_file_override: ContextVar[Path | None] = ContextVar("risk_config_file", default=None)

T = TypeVar("T")
R = TypeVar("R")


class RiskConfigError(ValueError):
    """A risk setting is unknown or has a bad value; the message names the key."""


class _hybridmethod(Generic[T, R]):
    """`RiskConfig.with_overrides(...)` starts from the environment and file;
    `config.with_overrides(...)` starts from that instance."""

    def __init__(self, func: Callable[[Any, list[str] | tuple[str, ...]], R]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: Any, objtype: type | None = None) -> Callable[[Iterable[str]], R]:
        target = obj if obj is not None else objtype

        def bound(pairs: Iterable[str]) -> R:
            return self.func(target, list(pairs))

        bound.__doc__ = self.__doc__
        return bound


def _limit(default: float, description: str, reason: str, live: str = "", **kw: Any) -> Any:
    if isinstance(default, float):
        kw["allow_inf_nan"] = False
    return Field(default=default, description=description, json_schema_extra={"reason": reason, "live": live}, **kw)


class RiskConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETFLOW_RISK_", extra="forbid", frozen=True,
                                      ignored_types=(_hybridmethod,))

    trading_state: TradingState = Field(
        default=TradingState.ACTIVE,
        description="floor of the trading state: REDUCING or HALTED here overrides any persisted state "
                    "(a deploy-time kill switch); it cannot lift a persisted HALT",
        json_schema_extra={"reason": "TRADING_HALTED / TRADING_REDUCING", "live": "ACTIVE"})
    max_order_notional: float = _limit(
        100_000.0, "largest order in quote currency; a bigger order is cut down to it (REDUCED), not rejected",
        "MAX_ORDER_NOTIONAL", "a few % of equity", ge=0)
    max_position_notional: float = _limit(
        100_000.0, "largest position per symbol in quote currency; a BUY is cut down to the headroom",
        "MAX_POSITION_NOTIONAL", "", ge=0)
    max_position_qty: dict[str, float] = Field(
        default_factory=dict,
        description="largest position per symbol in base units, as JSON {\"BTCUSDT\": 0.5}; "
                    "symbols not listed have no quantity cap",
        json_schema_extra={"reason": "MAX_POSITION_QTY", "live": ""})
    max_gross_exposure: float = _limit(
        250_000.0, "sum of all positions' notional plus working BUY orders, in quote currency",
        "MAX_GROSS_EXPOSURE", "", ge=0)
    max_open_positions: int = _limit(10, "most symbols held at once (dust below the exchange minimum not counted)",
                                     "MAX_OPEN_POSITIONS", "", ge=0)
    max_orders_per_minute: int = _limit(
        60, "orders per sliding 60 s window, all symbols (Binance allows far more; this stops loops)",
        "RATE_LIMIT", "", ge=0)
    max_orders_per_minute_per_symbol: int = _limit(10, "orders per sliding 60 s window for one symbol",
                                                   "RATE_LIMIT_SYMBOL", "", ge=0)
    daily_loss_limit: float = _limit(
        0.0, "loss since the UTC day's start (realized + unrealized), in quote currency, that sets "
             "REDUCING until the next UTC day", "DAILY_LOSS_LIMIT", "", ge=0)
    daily_loss_pct: float = _limit(
        25.0, "the same daily loss as % of the day's starting equity", "DAILY_LOSS_LIMIT", "3", ge=0, le=100)
    max_drawdown_pct: float = _limit(
        50.0, "drawdown from peak equity, in %, that sets REDUCING until an operator resets the state",
        "MAX_DRAWDOWN", "15", ge=0, le=100)
    price_band_pct: float = _limit(
        5.0, "fat-finger guard: reference or limit price within +-X % of the last market price",
        "PRICE_BAND", "", ge=0)
    max_signal_age_s: float = _limit(60.0, "oldest signal (event time to check time) that may still trade",
                                     "STALE_SIGNAL", "", ge=0)
    stale_market_data_s: float = _limit(
        120.0, "no order when the symbol's last price is older than this (or missing)",
        "STALE_MARKET_DATA", "", ge=0)
    loss_streak: int = _limit(0, "losing round trips in a row that start a cooldown (REDUCING); 0 = off",
                              "LOSS_STREAK_COOLDOWN", "4", ge=0)
    loss_streak_cooldown_s: float = _limit(3600.0, "length of that cooldown", "LOSS_STREAK_COOLDOWN", "", ge=0)
    exchange_ban_s: float = _limit(
        120.0, "HALTED time after an exchange ban (HTTP 418/429, code -1003) without Retry-After",
        "EXCHANGE_BAN", "", ge=0)
    order_equity_share: float = Field(
        default=1.0, gt=0, le=1, description="share of equity a BUY spends (fees included)",
        json_schema_extra={"reason": "sizing", "live": "0.1-0.25"})
    fee_rate: float = Field(
        default=0.001, ge=0, lt=1, description="taker fee rate assumed for balance checks of LIMIT orders",
        json_schema_extra={"reason": "INSUFFICIENT_BALANCE", "live": "your VIP tier"})
    state_refresh_s: float = Field(
        default=1.0, ge=0, allow_inf_nan=False,
        description="how often (event time) an engine re-reads a shared state store for changes made elsewhere",
        json_schema_extra={"reason": "-", "live": "1"})
    account_wait_s: float = Field(
        default=10.0, ge=0, allow_inf_nan=False,
        description="longest a risk Function waits for the fill of an order it approved to be booked in the "
        "account snapshot before deciding the next signal",
        json_schema_extra={"reason": "-", "live": "10"})
    state_file: Path | None = Field(
        default=None, description="JSON file that persists the trading state; unset = in memory",
        json_schema_extra={"reason": "-", "live": "set it"})
    exchange_info_file: Path | None = Field(
        default=None, description="Binance exchangeInfo JSON whose filters orders must satisfy; unset = none",
        json_schema_extra={"reason": "filter names", "live": "fetched by the executor"})

    # Backtest semantics (backtesting.py has no risk layer): account-level caps, loss triggers
    # and rate limits off; the structural checks (duplicates, position rule, balance, freshness,
    # price band, filters when given) stay on. Fixed values, independent of the environment.
    REPLAY_PROFILE: ClassVar[dict[str, Any]] = {
        "max_order_notional": 0.0, "max_position_notional": 0.0, "max_gross_exposure": 0.0,
        "max_open_positions": 0, "max_orders_per_minute": 0, "max_orders_per_minute_per_symbol": 0,
        "daily_loss_limit": 0.0, "daily_loss_pct": 0.0, "max_drawdown_pct": 0.0, "loss_streak": 0,
    }

    @classmethod
    def replay(cls) -> RiskConfig:
        """The documented replay profile: what `run_replay` uses when no config is given, so a
        library replay equals a backtest and does not depend on MARKETFLOW_RISK_* variables."""
        return cls.model_construct(**cls.REPLAY_PROFILE)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)

    @classmethod
    def load(cls, path: str | Path | None = None) -> RiskConfig:
        """Read `path` (JSON or TOML; a `[risk]` table is accepted) under the environment."""
        token = _file_override.set(Path(path) if path is not None else None)
        try:
            return cls()
        except ValidationError as exc:
            raise RiskConfigError(_explain(exc)) from exc
        finally:
            _file_override.reset(token)

    @_hybridmethod
    def with_overrides(self_or_cls: Any, pairs: list[str] | tuple[str, ...]) -> RiskConfig:
        """Apply `KEY=VALUE` strings (the CLI's repeatable `--risk`); unknown keys and bad values
        raise RiskConfigError naming the key and what it accepts."""
        updates: dict[str, str] = {}
        fields = RiskConfig.model_fields
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip().lower().replace("-", "_")
            if not sep or not key:
                raise RiskConfigError(f"risk override {pair!r} is not KEY=VALUE")
            if key not in fields:
                hint = difflib.get_close_matches(key, fields, n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else ""
                raise RiskConfigError(f"unknown risk key {key!r}{did} known keys: {', '.join(sorted(fields))}")
            updates[key] = value.strip()
        parsed: dict[str, Any] = {k: _parse_value(k, v, fields[k]) for k, v in updates.items()}
        try:
            if isinstance(self_or_cls, RiskConfig):
                base = self_or_cls.model_dump()
                base.update(parsed)
                return type(self_or_cls)(**base)
            return self_or_cls(**parsed)
        except ValidationError as exc:
            raise RiskConfigError(_explain(exc)) from exc

    def describe(self) -> list[dict[str, Any]]:
        """Plain rows (key, env var, value, default, reason, description) for docs and the CLI."""
        rows = []
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
            rows.append({"key": name, "env": f"MARKETFLOW_RISK_{name.upper()}", "value": getattr(self, name),
                         "default": default, "reason": extra.get("reason", ""), "description": info.description})
        return rows


def _parse_value(key: str, raw: str, info: FieldInfo) -> Any:
    """Strings go to pydantic as they are (lax mode converts numbers and enums); JSON objects are
    decoded for the dict-valued keys; an empty value or `none` means unset for optional keys."""
    if raw.lower() in ("", "none", "null") and info.default is None:
        return None
    if key == "max_position_qty":
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise RiskConfigError(f"{key}: expected a JSON object like {{\"BTCUSDT\": 0.5}}, got {raw!r}")
        return value
    if key == "trading_state":
        return raw.upper()
    return raw


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        parts.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "bad risk setting: " + "; ".join(parts)


class _FileSource(PydanticBaseSettingsSource):
    """Values from a JSON or TOML file, below the environment in precedence."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = _file_override.get()
        if path is None and os.environ.get(FILE_ENV):
            path = Path(os.environ[FILE_ENV])
        self._data = _read_file(path) if path is not None else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if v is not None}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RiskConfigError(f"cannot read risk config file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise RiskConfigError(f"risk config file {path} is not valid {path.suffix or 'JSON'}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("risk"), dict):
        data = data["risk"]
    if not isinstance(data, dict):
        raise RiskConfigError(f"risk config file {path} must hold an object of key: value")
    unknown = sorted(set(data) - set(RiskConfig.model_fields))
    if unknown:
        raise RiskConfigError(f"unknown risk keys in {path}: {', '.join(unknown)}")
    return data

