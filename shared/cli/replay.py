"""`marketflow run`, `replay`, `indicators`, `strategies` and `trading-state`: history through the
in-process pipeline, and the persisted trading state (kill switch)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
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
        raise CliError(f"no such file: {', '.join(missing)}")
    reader = read_trades if trades else read_klines
    with _progress(None, "reading trades" if trades else "reading") as bar:
        try:
            return reader(paths, symbol=symbol, progress=bar.update)
        except DataError as exc:
            raise CliError(f"bad market data: {exc}") from None


class _TradeSeries:
    """What the summary prints of a trade replay's input."""

    def __init__(self, ticks: Any, interval: str, bars: Sequence[Any]) -> None:
        self.symbol = ticks.symbol
        self.interval = f"{interval} bars from {len(ticks)} trades"
        self.quality = ticks.quality
        self.bars = bars


def _replay(series: Any, strategy: str, params: dict[str, str], cash: float, commission: float,
            risk: list[str], fee_mode: str, out: Path, interval: str | None = None) -> dict[str, Any]:
    """Replay klines (`series.bars`) or, with `interval`, trades (`series` is the tick list)."""
    from shared.pipeline.replay import run_replay, run_trade_replay
    from shared.report import summarize, write_report
    from shared.risk import RiskConfig
    from shared.strategies import StrategyConfigError

    try:
        config = RiskConfig.with_overrides(risk)
    except ValueError as exc:
        raise CliError(f"--risk: {exc}") from None
    items = series if interval is not None else series.bars
    with _progress(len(items), f"replay {series.symbol} {strategy}") as bar:
        try:
            if interval is None:
                result = run_replay(series.bars, strategy, params, cash=cash, commission=commission,
                                    fee_mode=fee_mode, risk_config=config,  # type: ignore[arg-type]
                                    progress=bar.update)
            else:
                result = run_trade_replay(series, strategy, params, interval=interval, cash=cash,
                                          commission=commission, fee_mode=fee_mode,  # type: ignore[arg-type]
                                          risk_config=config, progress=bar.update)
                series = _TradeSeries(series, interval, result.bars)
        except (StrategyConfigError, ValueError) as exc:
            raise CliError(str(exc)) from None
    write_report(result, out)
    summary = summarize(result)
    _print_summary(series, strategy, params, summary, out)
    return summary


def _print_summary(series: Any, strategy: str, params: dict[str, str], s: dict[str, Any], out: Path) -> None:
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
        ("report", str(out / "report.html")),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def _params(pairs: list[str] | None) -> dict[str, str]:
    from shared.strategies import StrategyConfigError, parse_params

    try:
        return parse_params(pairs)
    except StrategyConfigError as exc:
        raise CliError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    from shared.samples import btcusdt_1m_paths

    series = _load([str(p) for p in btcusdt_1m_paths()], None)
    _replay(series, args.strategy, _params(args.param), args.cash, args.commission, args.risk,
            args.fee_mode, Path(args.out))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    if args.trades:
        ticks = _load(args.source, args.symbol, trades=True)
        _replay(ticks, args.strategy, _params(args.param), args.cash, args.commission, args.risk,
                args.fee_mode, Path(args.out), interval=args.interval)
        return 0
    series = _load(args.source, args.symbol)
    _replay(series, args.strategy, _params(args.param), args.cash, args.commission, args.risk,
            args.fee_mode, Path(args.out))
    return 0


def _state_engine(state_file: str | None) -> Any:
    import os

    from shared.risk import RiskConfig, RiskEngine

    path = state_file or os.environ.get("MARKETFLOW_RISK_STATE_FILE")
    if not path:
        raise CliError("no state file: pass --state-file or set MARKETFLOW_RISK_STATE_FILE")
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
        p.add_argument("--strategy", required=True, help="strategy name (see `marketflow strategies`)")
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

    run = sub.add_parser("run", help="the main job: bundled BTCUSDT 1m data, sma_cross, paper broker",
                         description="Replay the bundled BTCUSDT 1m sample (2020-01-01..03) through the whole "
                         "pipeline with sma_cross and the paper broker; print a summary and write a report.")
    _add_replay_options(run, "sma_cross")
    run.add_argument("--out", default="reports/run", help="report folder (default %(default)s)")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("replay", help="replay any Binance kline files through the pipeline",
                         description="Replay Binance kline files (CSV or daily .zip, in time order) through "
                         "the whole pipeline and write a report folder.")
    rep.add_argument("--source", nargs="+", required=True, metavar="PATH", help="kline files, in time order")
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
    ts.add_argument("--state-file", help="the risk state file (default: $MARKETFLOW_RISK_STATE_FILE)")
    ts.add_argument("--by", default="operator:cli", help="who changes it (recorded; default %(default)s)")
    ts.add_argument("--reason", default="set from the CLI", help="why (recorded in the state-change event)")
    ts.set_defaults(func=cmd_trading_state)

    st = sub.add_parser("strategies", help="list strategies and their parameters",
                        description="List the registered strategies with their documented parameters.")
    st.set_defaults(func=cmd_strategies)
