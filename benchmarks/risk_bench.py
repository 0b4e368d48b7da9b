"""Risk checks: decisions per second and p50/p99 latency of one layer-1 and one layer-2 check.

All checks on: every limit set (and not binding), the bundled exchange filters loaded, a loss
streak and daily loss trigger armed, an account holding two other symbols, a fresh price each
iteration. Each call is timed alone with `perf_counter_ns`; the approve path is measured (the
longest: every check, sizing, filters and the intent). The process's objects are frozen out of the
cyclic GC while timing, as the executor freezes its own after startup. Figures are medians over
several runs.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from shared.events import OrderIntent, RiskDecision, Side, Signal
from shared.portfolio import AccountSnapshot
from shared.risk import ExchangeFilters, RiskConfig, RiskEngine

ITERATIONS = 20_000
RUNS = 5
SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000


def _config() -> RiskConfig:
    return RiskConfig.model_validate({
        "max_order_notional": 5_000.0, "max_position_notional": 8_000.0, "max_gross_exposure": 50_000.0,
        "max_position_qty": {SYMBOL: 1.0}, "max_open_positions": 5, "max_orders_per_minute": 1_000_000,
        "max_orders_per_minute_per_symbol": 1_000_000, "daily_loss_limit": 5_000.0, "daily_loss_pct": 20.0,
        "max_drawdown_pct": 30.0, "price_band_pct": 2.0, "max_signal_age_s": 30.0, "stale_market_data_s": 30.0,
        "loss_streak": 5, "loss_streak_cooldown_s": 600.0, "order_equity_share": 0.5,
    })


def _account(t: int) -> AccountSnapshot:
    return AccountSnapshot(cash=20_000.0, equity=24_000.0, peak_equity=25_000.0, day_start_equity=24_500.0,
                           realized_pnl=100.0, positions={"ETHUSDT": (1.0, 2_000.0, 2_000.0),
                                                          "BNBUSDT": (4.0, 500.0, 500.0)},
                           consecutive_losses=1, time=t)


def _signals(n: int) -> list[Signal]:
    return [Signal.create(symbol=SYMBOL, strategy="bench", side=Side.BUY, price=40_000.0, bar_open_time=T0 + i * 60_000,
                          bar_close_time=T0 + i * 60_000 + 59_999, market_event_id=f"market-{i:08d}",
                          correlation_id=f"corr-{i:08d}") for i in range(n)]


def _intents(n: int) -> list[OrderIntent]:
    return [OrderIntent(event_id=OrderIntent.make_id(f"signal-{i:08d}"), correlation_id=f"corr-{i:08d}",
                        event_time=T0 + i * 60_000 + 59_999, symbol=SYMBOL, strategy="bench", side=Side.BUY,
                        quote_quantity=4_000.0, reference_price=40_000.0, signal_id=f"signal-{i:08d}")
            for i in range(n)]


def _percentiles(ns: list[int]) -> tuple[float, float, float]:
    ns.sort()
    p50 = ns[len(ns) // 2] / 1000
    p99 = ns[int(len(ns) * 0.99)] / 1000
    per_s = 1e9 / statistics.fmean(ns)
    return per_s, p50, p99


def _run_layer(layer: int, filters: ExchangeFilters, cfg: RiskConfig, n: int) -> tuple[float, float, float]:
    engine = RiskEngine(cfg, filters=filters)
    clock = time.perf_counter_ns
    times: list[int] = []
    inputs: list[Any] = _signals(n) if layer == 1 else _intents(n)
    # As the executor does after startup (aks_executor.main): what exists now is frozen out of the
    # cyclic GC, so a collection during a check scans what checks allocate, not this whole process.
    gc.collect()
    gc.freeze()
    try:
        _time_layer(layer, engine, inputs, clock, times)
    finally:
        gc.unfreeze()
    return _percentiles(times)


def _time_layer(layer: int, engine: RiskEngine, inputs: list[Any], clock: Any, times: list[int]) -> None:
    if layer == 1:
        for signal in inputs:
            now = signal.event_time
            engine.on_market(SYMBOL, 40_000.0, now)
            account = _account(now)
            start = clock()
            decision, intent = engine.check_signal(signal, account, now)
            end = clock()
            _approved(decision, intent)
            times.append(end - start)
    else:
        for order in inputs:
            now = order.event_time
            engine.on_market(SYMBOL, 40_000.0, now)
            account = _account(now)
            start = clock()
            decision, intent = engine.last_look(order, account, (), now)
            end = clock()
            _approved(decision, intent)
            times.append(end - start)


def _approved(decision: RiskDecision | None, intent: OrderIntent | None) -> None:
    """The benchmark measures the full approve path; a rejection would make it meaningless."""
    if intent is None:
        raise RuntimeError(f"benchmark check rejected: {decision}")


def run(iterations: int = ITERATIONS, runs: int = RUNS) -> dict[str, Any]:
    """Medians over `runs` of decisions/s, p50 and p99 (µs) for each layer, after a warm-up."""
    filters = ExchangeFilters.bundled()
    cfg = _config()
    _run_layer(1, filters, cfg, 2_000)
    _run_layer(2, filters, cfg, 2_000)
    out: dict[str, Any] = {"iterations": iterations, "runs": runs}
    for layer in (1, 2):
        results = [_run_layer(layer, filters, cfg, iterations) for _ in range(runs)]
        out[f"layer{layer}"] = {
            "decisions_per_s": statistics.median(r[0] for r in results),
            "p50_us": statistics.median(r[1] for r in results),
            "p99_us": statistics.median(r[2] for r in results),
        }
    return out


if __name__ == "__main__":
    result = run()
    for layer in ("layer1", "layer2"):
        d = result[layer]
        print(f"{layer}: {d['decisions_per_s']:,.0f} decisions/s, p50 {d['p50_us']:.2f} µs, p99 {d['p99_us']:.2f} µs")
