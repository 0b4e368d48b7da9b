"""`marketflow run`, `replay`, `indicators`, `strategies` and `trading-state`: history through the
in-process pipeline, and the persisted trading state (kill switch)."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CliError

DEFAULT_CASH = 10_000.0
DEFAULT_COMMISSION = 0.001  # Binance spot's base taker fee, 0.1 %


def _progress(total: int | None, desc: str) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on a terminal, silence in logs and CI.
    return tqdm(total=total, desc=desc, unit=" bars", unit_scale=True, disable=None, file=sys.stderr,
                leave=False)


def _load(sources: Sequence[str], symbol: str | None, *, trades: bool = False) -> Any:
    """Read kline (or trade) files; a missing file or bad data is one clear CliError."""
    from shared.data import DataError, read_klines, read_trades

    paths = [Path(s) for s in sources]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CliError(f"--source: no such file: {', '.join(missing)}")
    reader = read_trades if trades else read_klines
    with _progress(None, "reading trades" if trades else "reading") as bar:
        try:
            return reader(paths, symbol=symbol, progress=bar.update)
        except DataError as exc:
            first = exc.problems[0]
            more = f" (and {exc.total - 1} more problems)" if exc.total > 1 else ""
            raise CliError(f"bad market data: {first}{more}") from None
        except ValueError as exc:
            option = "--symbol" if symbol is not None and "symbol=" in str(exc) else "--source"
            raise CliError(f"{option}: {exc}") from None


class _TradeSeries:
    """What the summary prints of a trade replay's input."""

    def __init__(self, ticks: Any, interval: str, bars: Sequence[Any]) -> None:
        self.symbol = ticks.symbol
        self.interval = f"{interval} bars from {len(ticks)} trades"
        self.quality = ticks.quality
        self.bars = bars


@dataclass
class ReplayOptions:
    """One replay as the user asked for it (from the command line or a summary.json)."""

    sources: list[str]
    symbol: str | None
    strategy: str
    params: dict[str, str]
    cash: float
    commission: float
    fee_mode: str
    risk: list[str]
    out: Path
    trades: bool = False
    interval: str = "1m"
    expected_sha256: dict[str, str] = field(default_factory=dict)  # path -> digest (--from-summary)


@dataclass
class _Checked:
    """What `_check` built from the options before any data is read."""

    risk_config: Any
    risk_sources: dict[str, str]
    filters: Any
    windows: dict[str, int]
    params: dict[str, Any]  # every strategy parameter, defaults included


def _check(opts: ReplayOptions) -> _Checked:
    """Every check that needs no market data, so a bad option fails before the work."""
    from shared.strategies import StrategyConfigError, create

    if not (math.isfinite(opts.cash) and opts.cash > 0):
        raise CliError(f"--cash: must be a finite number above 0, got {opts.cash!r}")
    if not (math.isfinite(opts.commission) and 0 <= opts.commission < 1):
        raise CliError(f"--commission: must be a finite rate in [0, 1), got {opts.commission!r}")
    try:
        strategy = create(opts.strategy, opts.params)
    except StrategyConfigError as exc:
        raise CliError(f"--strategy/--param: {exc}") from None
    config, sources = _risk_config(opts.risk)
    filters = _exchange_filters(config.exchange_info_file, sources["exchange_info_file"])
    windows = {k: v for k, v in strategy.params.model_dump().items()
               if isinstance(v, int) and "in bars" in (type(strategy.params).model_fields[k].description or "")}
    return _Checked(config, sources, filters, windows, strategy.params.model_dump())


def _risk_config(flags: list[str]) -> tuple[Any, dict[str, str]]:
    """The effective RiskConfig (defaults < file < environment < --risk) and, per key, where its
    value came from: default, file, environment or flag."""
    from shared.risk import RiskConfig

    try:
        config = RiskConfig.with_overrides(flags)
    except ValueError as exc:
        raise CliError(f"--risk (or MARKETFLOW_RISK_*): {exc}") from None
    flagged = {pair.partition("=")[0].strip().lower().replace("-", "_") for pair in flags}
    env = {k.upper() for k in os.environ}
    in_file = _risk_file_keys()
    sources = {}
    for name in RiskConfig.model_fields:
        sources[name] = ("flag" if name in flagged else "environment" if f"MARKETFLOW_RISK_{name.upper()}" in env
                         else "file" if name in in_file else "default")
    return config, sources


def _risk_file_keys() -> set[str]:
    """Keys set by the risk config file named in MARKETFLOW_RISK_FILE (already validated)."""
    import tomllib

    from shared.risk.config import FILE_ENV

    path = os.environ.get(FILE_ENV)
    if not path:
        return set()
    text = Path(path).read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.lower().endswith(".toml") else json.loads(text)
    if isinstance(data.get("risk"), dict):
        data = data["risk"]
    return {k for k, v in data.items() if v is not None}


def _exchange_filters(path: Path | None, source: str) -> Any:
    """The exchangeInfo filters, read and parsed now (not after the replay); None if unset."""
    from shared.risk import ExchangeFilters
    from shared.risk.filters import parse_exchange_info

    if path is None:
        return None
    given = {"flag": "--risk", "environment": "MARKETFLOW_RISK_EXCHANGE_INFO_FILE",
             "file": "the risk config file"}.get(source, source)
    where = f"exchange_info_file {path} (from {given})"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"{where}: cannot read it ({reason})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{where} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
    try:
        if not isinstance(doc, dict):
            raise ValueError("the document is not a JSON object")
        filters: ExchangeFilters = parse_exchange_info(doc)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CliError(f"{where}: not a Binance exchangeInfo document ({type(exc).__name__}: {exc})") from None
    return filters


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _inputs(opts: ReplayOptions, data: Any, digests: dict[str, str]) -> list[dict[str, Any]]:
    """Each source: its path, sha256, rows, first and last bar (trade) time."""
    from shared.report.writer import iso_utc

    items = data if opts.trades else data.bars
    starts = [*data.starts, len(items)]
    out = []
    for i, source in enumerate(opts.sources):
        lo, hi = starts[i], starts[i + 1]
        first = last = None
        if hi > lo:
            if opts.trades:
                first, last = iso_utc(items[lo].time), iso_utc(items[hi - 1].time)
            else:
                first, last = iso_utc(items[lo].open_time), iso_utc(items[hi - 1].open_time)
        out.append({"path": str(Path(source).absolute()), "sha256": digests[source], "rows": hi - lo,
                    "first_bar": first, "last_bar": last})
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("marketflow")
    except PackageNotFoundError:
        return "unknown"


def replay_bars(bars: Sequence[Any], opts: ReplayOptions, checked: _Checked,
                progress: Any = None) -> Any:
    """The kline replay `marketflow replay` runs, and `marketflow sweep` runs for each combination:
    one code path, so a sweep's figures are the replay's. Returns the ReplayResult."""
    from shared.pipeline.replay import run_replay

    return run_replay(bars, opts.strategy, opts.params, cash=opts.cash, commission=opts.commission,
                      fee_mode=opts.fee_mode,  # type: ignore[arg-type]
                      risk_config=checked.risk_config, exchange_filters=checked.filters, progress=progress)


def _execute(opts: ReplayOptions) -> dict[str, Any]:
    """Check the options, read the data, replay, write the report folder atomically, print."""
    from shared.pipeline.replay import run_trade_replay
    from shared.report import summarize
    from shared.report.folder import OutError, ReportFolder
    from shared.report.writer import write_files
    from shared.strategies import StrategyConfigError

    checked = _check(opts)
    try:
        folder = ReportFolder(opts.out)
    except OutError as exc:
        raise CliError(f"--out: {exc}") from None
    started = time.perf_counter()
    with folder:
        digests = {}
        for source in opts.sources:
            path = Path(source)
            if not path.is_file():
                raise CliError(f"--source: no such file: {source}")
            digests[source] = _sha256(path)
            expected = opts.expected_sha256.get(source)
            if expected is not None and expected != digests[source]:
                raise CliError(f"--from-summary: {source} changed since the summary was written "
                               f"(sha256 {digests[source][:16]}…, recorded {expected[:16]}…)")
        data = _load(opts.sources, opts.symbol, trades=opts.trades)
        loaded = time.perf_counter()
        n_items = len(data)
        longest = max(checked.windows.items(), key=lambda kv: kv[1], default=None)
        if longest is not None and not opts.trades and longest[1] > n_items:
            print(f"marketflow: warning: {longest[0]}={longest[1]} bars is longer than the data ({n_items} bars): "
                  "the strategy never decides", file=sys.stderr)
        series: Any = data
        with _progress(n_items, f"replay {data.symbol} {opts.strategy}") as bar:
            try:
                if not opts.trades:
                    result = replay_bars(data.bars, opts, checked, progress=bar.update)
                else:
                    result = run_trade_replay(data, opts.strategy, opts.params, interval=opts.interval,
                                              cash=opts.cash, commission=opts.commission,
                                              fee_mode=opts.fee_mode,  # type: ignore[arg-type]
                                              risk_config=checked.risk_config, exchange_filters=checked.filters,
                                              progress=bar.update)
                    series = _TradeSeries(data, opts.interval, result.bars)
            except (StrategyConfigError, ValueError) as exc:
                raise CliError(str(exc)) from None
        replayed = time.perf_counter()
        risk_values = checked.risk_config.model_dump(mode="json")
        extra = {
            "version": _version(),
            "config": {
                "strategy": opts.strategy, "params": checked.params, "cash": opts.cash,
                "commission": opts.commission, "fee_mode": opts.fee_mode, "symbol": data.symbol,
                "trades": opts.trades, "interval": opts.interval if opts.trades else None,
                "risk": {k: {"value": risk_values[k], "source": checked.risk_sources[k]} for k in risk_values},
            },
            "inputs": _inputs(opts, data, digests),
        }
        write_files(result, folder.staging, extra)
        folder.commit()
    summary = summarize(result)
    phases = {"load": loaded - started, "replay": replayed - loaded, "report": time.perf_counter() - replayed}
    _print_summary(series, opts.strategy, opts.params, summary, opts.out, phases)
    return summary


def _print_summary(series: Any, strategy: str, params: dict[str, str], s: dict[str, Any], out: Path,
                   phases: dict[str, float]) -> None:
    bars = series.bars
    p = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
    rows = [
        ("data", f"{series.symbol} {series.interval}, {len(bars)} bars"),
        ("data quality", series.quality.summary()),
        ("strategy", f"{strategy} ({p})"),
        ("trades", f"{s['n_trades']}"),
        ("return", f"{s['return_pct']:+.4f} %"),
        ("final equity", f"{s['equity_final']:.2f}"),
        ("win rate", f"{s['win_rate_pct']:.2f} %"),
        ("max drawdown", f"{s['max_drawdown_pct']:.4f} %"),
        ("exposure", f"{s['exposure_pct']:.2f} %"),
        ("commissions", f"{s['commissions']:.2f}"),
        ("events", f"{s['events']} ({s['events_per_s']:,.0f}/s)"),
        ("rejections", ", ".join(f"{k} {v}" for k, v in sorted(s["rejections"].items())) or "none"),
        ("reduced", f"{s['reduced']}"),
        ("time", ", ".join(f"{k} {v:.3f} s" for k, v in phases.items())),
        ("report", str(out / "report.html")),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def _params(pairs: list[str] | None) -> dict[str, str]:
    from shared.strategies import StrategyConfigError, parse_params

    seen: dict[str, str] = {}
    for pair in pairs or []:
        key = pair.partition("=")[0].strip()
        if key in seen:
            raise CliError(f"--param: {key} given twice ({seen[key]}, {pair}); give each parameter once")
        seen[key] = pair
    try:
        return parse_params(pairs)
    except StrategyConfigError as exc:
        raise CliError(f"--param: {exc}") from None


def _flag_value(value: Any) -> str:
    """A summary.json risk value as the `--risk KEY=VALUE` text that sets it again."""
    if value is None:
        return "none"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def options_from_summary(path: Path, out: Path) -> ReplayOptions:
    """The options of the replay that wrote `path` (a summary.json with `config` and `inputs`):
    every risk limit is given as a flag, so neither the environment nor a file changes it."""
    where = f"--from-summary {path}"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{where} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
    config = summary.get("config") if isinstance(summary, dict) else None
    inputs = summary.get("inputs") if isinstance(summary, dict) else None
    if not isinstance(config, dict) or not isinstance(inputs, list) or not inputs:
        raise CliError(f"{where}: no `config` and `inputs` (written by an older MarketFlow or not a summary)")
    try:
        return ReplayOptions(
            sources=[str(i["path"]) for i in inputs], symbol=str(config["symbol"]), strategy=str(config["strategy"]),
            params={str(k): str(v) for k, v in config["params"].items()}, cash=float(config["cash"]),
            commission=float(config["commission"]), fee_mode=str(config["fee_mode"]),
            risk=[f"{k}={_flag_value(v['value'])}" for k, v in config["risk"].items()], out=out,
            trades=bool(config.get("trades")), interval=str(config.get("interval") or "1m"),
            expected_sha256={str(i["path"]): str(i["sha256"]) for i in inputs})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CliError(f"{where}: malformed config or inputs ({type(exc).__name__}: {exc})") from None


def cmd_run(args: argparse.Namespace) -> int:
    from shared.samples import btcusdt_1m_paths

    _execute(ReplayOptions(sources=[str(p) for p in btcusdt_1m_paths()], symbol=None, strategy=args.strategy,
                           params=_params(args.param), cash=args.cash, commission=args.commission,
                           fee_mode=args.fee_mode, risk=args.risk, out=Path(args.out)))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if args.from_summary:
        given = [opt for opt, value in (("--source", args.source), ("--strategy", args.strategy),
                                        ("--param", args.param), ("--risk", args.risk)) if value]
        if given:
            raise CliError(f"--from-summary reruns the recorded replay; drop {', '.join(given)}")
        _execute(options_from_summary(Path(args.from_summary), Path(args.out)))
        return 0
    for opt, value in (("--source", args.source), ("--strategy", args.strategy)):
        if not value:
            raise CliError(f"{opt} is required (or --from-summary PATH)")
    _execute(ReplayOptions(sources=args.source, symbol=args.symbol, strategy=args.strategy,
                           params=_params(args.param), cash=args.cash, commission=args.commission,
                           fee_mode=args.fee_mode, risk=args.risk, out=Path(args.out), trades=args.trades,
                           interval=args.interval))
    return 0


def _state_engine(state_file: str | None) -> Any:
    import os

    from shared.risk import RiskConfig, RiskEngine

    path = state_file or os.environ.get("MARKETFLOW_RISK_STATE_FILE")
    if not path:
        # The shared store every Function and the executor read (STATE_STORAGE, MARKETFLOW_STATE_DB).
        from shared.adapters.stores import documents_from_settings
        from shared.adapters.trading_state import DocumentStateStore

        docs = documents_from_settings()
        if docs is None:
            raise CliError("no state store: pass --state-file, or set MARKETFLOW_RISK_STATE_FILE, STATE_STORAGE "
                           "or MARKETFLOW_STATE_DB")
        return RiskEngine(RiskConfig.replay(), store=DocumentStateStore(docs))
    return RiskEngine(RiskConfig.replay().model_copy(update={"state_file": Path(path)}))


def cmd_trading_state(args: argparse.Namespace) -> int:
    import time

    engine = _state_engine(args.state_file)
    now = int(time.time() * 1000)
    if args.action == "halt":
        engine.kill(args.by, args.reason, now)
    elif args.action in ("reduce", "resume"):
        engine.set_trading_state("REDUCING" if args.action == "reduce" else "ACTIVE", args.by, args.reason, now)
    state = engine.states.current(now)
    record = engine.states.record
    print(f"trading state: {state.value}")
    print(f"set by: {record.who} at {record.changed_at} ms: {record.why}")
    for lock in record.locks:
        until = "until reset" if lock.until is None else f"until {lock.until} ms"
        print(f"lock: {lock.source} -> {lock.state.value}, {lock.why} ({until})")
    return 0


def cmd_indicators(args: argparse.Namespace) -> int:
    from shared.indicators.table import write_indicators_csv

    series = _load(args.source, args.symbol)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = write_indicators_csv(series.bars, out)
    print(f"wrote {n} rows to {out}")
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from shared.strategies import describe

    for name, info in describe().items():
        print(f"{name}: {info['doc']}")
        for key, meta in info["params"].items():
            print(f"    {key} (default {meta['default']}): {meta['description']}")
    return 0


def _add_replay_options(p: argparse.ArgumentParser, strategy_default: str | None) -> None:
    if strategy_default is None:
        p.add_argument("--strategy", help="strategy name (see `marketflow strategies`); required unless "
                                          "--from-summary")
    else:
        p.add_argument("--strategy", default=strategy_default, help="strategy name (default %(default)s)")
    p.add_argument("--param", action="append", metavar="K=V", help="strategy parameter, repeatable")
    p.add_argument("--cash", type=float, default=DEFAULT_CASH, help="starting quote balance (default %(default)s)")
    p.add_argument("--commission", type=float, default=DEFAULT_COMMISSION,
                   help="commission rate per side (default %(default)s)")
    p.add_argument("--fee-mode", choices=("quote", "received"), default="quote",
                   help="asset fees are paid in: quote (both legs in USDT) or received (Binance default "
                        "without BNB: a buy pays in the bought asset). Default %(default)s")
    p.add_argument("--risk", action="append", default=[], metavar="KEY=VALUE",
                   help="override one risk limit, repeatable (see docs/risk.md)")


def register(sub: Any) -> None:
    """Add this module's commands to the `marketflow` parser."""

    run = sub.add_parser("run", help="the main job: bundled BTCUSDT 1m data, sma_cross, paper venue",
                         description="Replay the bundled BTCUSDT 1m sample (2020-01-01..03) through the whole "
                         "pipeline with sma_cross and the paper venue; print a summary and write a report.")
    _add_replay_options(run, "sma_cross")
    run.add_argument("--out", default="reports/run", help="report folder (default %(default)s)")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("replay", help="replay any Binance kline files through the pipeline",
                         description="Replay Binance kline files (CSV or daily .zip, in time order) through "
                         "the whole pipeline and write a report folder.")
    rep.add_argument("--source", nargs="+", metavar="PATH",
                     help="kline files, in time order; required unless --from-summary")
    rep.add_argument("--from-summary", metavar="SUMMARY.json",
                     help="rerun the replay a summary.json records: same files (checked by sha256), strategy, "
                          "parameters, cash, commission, fee mode and every risk limit")
    rep.add_argument("--symbol", help="symbol (default: from the file name)")
    rep.add_argument("--trades", action="store_true",
                     help="the files are trades (Binance trade archive or stream capture): they build bars, "
                          "and orders fill at the next trade's price")
    rep.add_argument("--interval", default="1m", help="bar interval built from trades (default %(default)s)")
    _add_replay_options(rep, None)
    rep.add_argument("--out", required=True, help="report folder")
    rep.set_defaults(func=cmd_replay)

    ind = sub.add_parser("indicators", help="streaming indicators of kline files to CSV",
                         description="Compute the streaming indicators (TA-Lib conventions), one row per bar.")
    ind.add_argument("--source", nargs="+", required=True, metavar="PATH", help="kline files, in time order")
    ind.add_argument("--symbol", help="symbol (default: from the file name)")
    ind.add_argument("--out", required=True, metavar="FILE.csv", help="output CSV")
    ind.set_defaults(func=cmd_indicators)

    ts = sub.add_parser("trading-state", help="show or set the trading state (the kill switch)",
                        description="Show the persisted trading state, or change it: `halt` is the kill switch "
                        "(no new orders, cancels pass), `reduce` lets only exposure-reducing orders pass, `resume` "
                        "sets ACTIVE and acknowledges loss-based locks (never an exchange ban). Every running "
                        "engine sharing the state file adopts the change within state_refresh_s.")
    ts.add_argument("action", choices=("show", "halt", "reduce", "resume"), help="what to do")
    ts.add_argument("--state-file", help="the risk state file (default: $MARKETFLOW_RISK_STATE_FILE, else the shared "
                    "store of $STATE_STORAGE / $STATE_STORAGE_CONTAINER or $MARKETFLOW_STATE_DB)")
    ts.add_argument("--by", default="operator:cli", help="who changes it (recorded; default %(default)s)")
    ts.add_argument("--reason", default="set from the CLI", help="why (recorded in the state-change event)")
    ts.set_defaults(func=cmd_trading_state)

    st = sub.add_parser("strategies", help="list strategies and their parameters",
                        description="List the registered strategies with their documented parameters.")
    st.set_defaults(func=cmd_strategies)
