"""`marketflow sweep`: every combination of a parameter grid through the replay, in parallel.

Each combination runs `replay.replay_bars`, the function `marketflow replay` runs, so its figures
are the ones a replay with those parameters prints. The kline files are read once, in this
process; the parsed bars go to each worker process once, pickled into the pool's initializer.
Workers are started with `spawn` (a forked child of a process holding other runtimes' threads
can deadlock) and ignore Ctrl-C, which this process handles: the pool is terminated and no
output folder is left.
"""

from __future__ import annotations

import argparse
import itertools
import math
import pickle
import signal
import sys
import time
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

from .errors import CliError
from .replay import DEFAULT_CASH, DEFAULT_COMMISSION

#: Most combinations one sweep runs (a typo in a grid should not start a week of work).
MAX_COMBINATIONS = 100_000


class GridAxis(NamedTuple):
    """One `--grid NAME=...`: the values in order, and each as the text the strategy is given."""

    name: str
    values: tuple[int | float, ...]
    texts: tuple[str, ...]


class Combination(NamedTuple):
    """One grid point: its place in grid order, its grid values, and every parameter as text."""

    position: int
    values: dict[str, int | float]
    params: dict[str, str]


def _number(spec: str, text: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise CliError(f"--grid {spec}: {text.strip()!r} is not a number") from None
    if not d.is_finite():
        raise CliError(f"--grid {spec}: {text.strip()!r} is not a finite number")
    return d


def _is_int(text: str) -> bool:
    t = text.strip().lstrip("+-")
    return t.isdigit()


def parse_axis(spec: str) -> GridAxis:
    """`NAME=START:STOP:STEP` (STOP included) or `NAME=V1,V2,...`; integers stay integers, decimals
    are stepped exactly (0.1 + 0.2 is 0.3)."""
    name, sep, body = spec.partition("=")
    name = name.strip()
    if not sep or not name or not body.strip():
        raise CliError(f"--grid {spec}: not of the form NAME=START:STOP:STEP or NAME=V1,V2,...")
    if ":" in body:
        parts = body.split(":")
        if len(parts) != 3:
            raise CliError(f"--grid {spec}: a range is START:STOP:STEP, three numbers")
        start, stop, step = (_number(spec, p) for p in parts)
        if step <= 0:
            raise CliError(f"--grid {spec}: STEP must be above 0")
        if start > stop:
            raise CliError(f"--grid {spec}: START is above STOP, the range is empty")
        if (stop - start) / step >= MAX_COMBINATIONS:
            raise CliError(f"--grid {spec}: more than {MAX_COMBINATIONS:,} values")
        decimals: list[Decimal] = []
        v = start
        while v <= stop:
            decimals.append(v)
            v += step
        integral = all(_is_int(p) for p in parts)
    else:
        parts = body.split(",")
        decimals = [_number(spec, p) for p in parts]
        integral = all(_is_int(p) for p in parts)
        if len(set(decimals)) != len(decimals):
            raise CliError(f"--grid {spec}: a value is given twice")
    values: tuple[int | float, ...] = tuple(int(d) if integral else float(d) for d in decimals)
    texts = tuple(str(int(d)) if integral else format(d.normalize(), "f") for d in decimals)
    return GridAxis(name, values, texts)


def parse_grid(specs: Sequence[str] | None, known: Sequence[str], strategy: str,
               fixed: dict[str, str]) -> list[GridAxis]:
    """Every `--grid`, checked against the strategy's parameters and the `--param` ones."""
    if not specs:
        raise CliError("--grid: give at least one, e.g. --grid fast=5:30:5")
    axes: list[GridAxis] = []
    for spec in specs:
        axis = parse_axis(spec)
        if axis.name not in known:
            raise CliError(f"--grid {spec}: {strategy} has no parameter {axis.name!r}; known: {', '.join(known)}")
        if any(a.name == axis.name for a in axes):
            raise CliError(f"--grid: {axis.name} given twice; give each parameter one grid")
        if axis.name in fixed:
            raise CliError(f"--grid {spec}: {axis.name} is also a --param; give it one or the other")
        axes.append(axis)
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_COMBINATIONS:
        raise CliError(f"--grid: {total:,} combinations, more than {MAX_COMBINATIONS:,}")
    return axes


def combinations(axes: Sequence[GridAxis], fixed: dict[str, str]) -> Generator[Combination, None, None]:
    """Grid order: the last --grid varies fastest."""
    picks = itertools.product(*(range(len(a.values)) for a in axes))
    for index, pick in enumerate(picks):
        values = {a.name: a.values[i] for a, i in zip(axes, pick, strict=True)}
        params = {**fixed, **{a.name: a.texts[i] for a, i in zip(axes, pick, strict=True)}}
        yield Combination(index, values, params)


# -- worker side ----------------------------------------------------------------------------

_WORK: tuple[Sequence[Any], Any, Any] | None = None  # (bars, ReplayOptions, _Checked) of this process


def _init_worker(payload: bytes, ignore_sigint: bool = True) -> None:
    """Pool initializer: unpickle the bars and the replay's options once per worker process."""
    global _WORK
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _WORK = pickle.loads(payload)


def _run_one(task: tuple[int, dict[str, str]]) -> tuple[int, dict[str, Any] | None, str | None]:
    """Replay one combination: (index, figures, None), or (index, None, reason) if it is refused."""
    from shared.report import summarize
    from shared.report.sweep import figures_of
    from shared.strategies import StrategyConfigError

    from .replay import replay_bars

    assert _WORK is not None, "worker not initialized"
    bars, opts, checked = _WORK
    index, params = task
    try:
        result = replay_bars(bars, replace(opts, params=params), checked)
    except (StrategyConfigError, ValueError) as exc:
        return index, None, str(exc)
    return index, figures_of(summarize(result)), None


def _run_all(payload: bytes, tasks: list[tuple[int, dict[str, str]]], jobs: int,
             progress: Any) -> Generator[tuple[int, dict[str, Any] | None, str | None], None, None]:
    """Each task's outcome, in completion order: in this process for one job, else in a spawn pool."""
    global _WORK
    if jobs == 1:
        _init_worker(payload, ignore_sigint=False)
        try:
            for task in tasks:
                yield _run_one(task)
                progress(1)
        finally:
            _WORK = None
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    # Children started while SIGINT is ignored start ignoring it (before their initializer runs).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = ctx.Pool(min(jobs, len(tasks)), initializer=_init_worker, initargs=(payload,))
    finally:
        signal.signal(signal.SIGINT, previous)
    with pool:  # leaving it (done, error or Ctrl-C) terminates the workers
        for outcome in pool.imap_unordered(_run_one, tasks):
            yield outcome
            progress(1)


# -- the command ----------------------------------------------------------------------------

def cmd_sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from shared.report.folder import OutError, ReportFolder
    from shared.report.sweep import METRICS, SWEEP_FILES, SweepRow, ranked, write_sweep
    from shared.strategies import STRATEGIES, StrategyConfigError, create

    from .replay import ReplayOptions, _check, _inputs, _load, _params, _sha256, _version

    if args.jobs < 1:
        raise CliError(f"--jobs: must be at least 1, got {args.jobs}")
    if args.metric not in METRICS:
        raise CliError(f"--metric: unknown metric {args.metric!r}; known: {', '.join(METRICS)}")
    if args.strategy not in STRATEGIES:
        raise CliError(f"--strategy: unknown strategy {args.strategy!r}; known: {', '.join(sorted(STRATEGIES))}")
    fixed = _params(args.param)
    known = list(STRATEGIES[args.strategy].Params.model_fields)
    axes = parse_grid(args.grid, known, args.strategy, fixed)
    names = [a.name for a in axes]

    combos = list(combinations(axes, fixed))
    refused: dict[int, str] = {}
    for c in combos:
        try:
            create(args.strategy, c.params)
        except StrategyConfigError as exc:
            refused[c.position] = str(exc)
    runnable = [c for c in combos if c.position not in refused]
    if not runnable:
        raise CliError(f"--grid: {args.strategy} refuses every combination (first: {refused[0]})")
    base = ReplayOptions(sources=args.source, symbol=args.symbol, strategy=args.strategy, params=runnable[0].params,
                         cash=args.cash, commission=args.commission, fee_mode=args.fee_mode, risk=args.risk,
                         out=Path(args.out))
    checked = _check(base)  # cash, commission, risk limits, exchange filters: before any work
    try:
        folder = ReportFolder(Path(args.out), SWEEP_FILES)
    except OutError as exc:
        raise CliError(f"--out: {exc}") from None

    started = time.perf_counter()
    with folder:
        data = _load(args.source, args.symbol)
        digests = {s: _sha256(Path(s)) for s in args.source}
        loaded = time.perf_counter()
        payload = pickle.dumps((data.bars, base, checked), protocol=pickle.HIGHEST_PROTOCOL)
        figures: dict[int, dict[str, Any]] = {}
        failed: dict[int, str] = {}
        tasks = [(c.position, c.params) for c in runnable]
        bar = tqdm(total=len(tasks), desc=f"sweep {data.symbol} {args.strategy}", unit=" runs", disable=None,
                   file=sys.stderr, leave=False)
        with bar, closing(_run_all(payload, tasks, args.jobs, bar.update)) as outcomes:
                for index, fig, reason in outcomes:
                    if fig is None:
                        failed[index] = reason or "refused"
                    else:
                        figures[index] = fig
        swept = time.perf_counter()
        rows = [SweepRow(c.position, c.values, figures.get(c.position),
                         refused.get(c.position) or failed.get(c.position)) for c in combos]
        order = ranked(rows, args.metric)
        meta = {
            "version": _version(),
            "config": {"strategy": args.strategy, "fixed_params": fixed, "cash": args.cash,
                       "commission": args.commission, "fee_mode": args.fee_mode, "symbol": data.symbol,
                       "risk": {k: {"value": v, "source": checked.risk_sources[k]}
                                for k, v in checked.risk_config.model_dump(mode="json").items()}},
            "inputs": _inputs(base, data, digests),
        }
        write_sweep(order, folder.staging, names=names, metric=args.metric, meta=meta)
        folder.commit()
    elapsed = time.perf_counter() - started
    ran = len(figures)
    best = order[0]
    width = 12
    lines = [
        ("data", f"{data.symbol} {len(data.bars):,} bars"),
        ("combinations", f"{len(combos):,} ({ran:,} replayed, {len(combos) - ran:,} refused)"),
        ("jobs", str(args.jobs)),
        ("best", (", ".join(f"{k}={v}" for k, v in best.params.items())
                  + (f": {args.metric} {best.figures[args.metric]!r}" if best.figures else ""))),
        ("time", f"load {loaded - started:.3f} s, sweep {swept - loaded:.3f} s "
                 f"({ran / (swept - loaded):,.1f} combinations/s), total {elapsed:.3f} s"),
        ("results", f"{Path(args.out) / 'results.csv'}, {Path(args.out) / 'heatmap.html'}"),
    ]
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    return 0


def register(sub: Any) -> None:
    """Add `marketflow sweep` to the parser."""
    p = sub.add_parser("sweep", help="replay every combination of a parameter grid, in parallel",
                       description="Replay Binance kline files once per combination of a parameter grid, in "
                       "parallel worker processes, through the same replay as `marketflow replay`; write "
                       "results.csv and results.json (sorted by --metric, best first) and heatmap.html.")
    p.add_argument("--source", nargs="+", required=True, metavar="PATH", help="kline files, in time order")
    p.add_argument("--symbol", help="symbol (default: from the file name)")
    p.add_argument("--strategy", required=True, help="strategy name (see `marketflow strategies`)")
    p.add_argument("--grid", action="append", metavar="K=START:STOP:STEP",
                   help="a parameter's values: START:STOP:STEP (STOP included) or V1,V2,...; repeatable, "
                        "every combination runs; the first two make the heatmap")
    p.add_argument("--param", action="append", metavar="K=V", help="a fixed strategy parameter, repeatable")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default %(default)s)")
    p.add_argument("--metric", default="return_pct",
                   help="sort by this figure, highest first: return_pct (default), equity_final, n_trades, "
                        "win_rate_pct, max_drawdown_pct, exposure_pct, commissions, reduced")
    p.add_argument("--cash", type=float, default=DEFAULT_CASH, help="starting quote balance (default %(default)s)")
    p.add_argument("--commission", type=float, default=DEFAULT_COMMISSION,
                   help="commission rate per side (default %(default)s)")
    p.add_argument("--fee-mode", choices=("quote", "received"), default="quote",
                   help="asset fees are paid in (as for `marketflow replay`; default %(default)s)")
    p.add_argument("--risk", action="append", default=[], metavar="KEY=VALUE",
                   help="override one risk limit, repeatable (see docs/risk.md)")
    p.add_argument("--out", required=True, help="output folder (results.csv, results.json, heatmap.html)")
    p.set_defaults(func=cmd_sweep)
