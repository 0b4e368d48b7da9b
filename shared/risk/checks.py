"""The pre-trade checks, each a small function with a stable reason code and a config key.

Checks take plain values and return None when they pass, or a `Failure(reasons, detail)`; sizing
checks cut an amount down and record why in `cuts`. The engine runs them in the order of `CHECKS`
for both layers; layer 2 passes exact exposure (orders in flight), layer 1 what it has.
`CHECKS` is also the source of the table in docs/risk.md (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.portfolio import AccountSnapshot

from .config import RiskConfig
from .reasons import Failure, Reason
from .states import TradingState

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """What a check guards, its reason code(s) and config key(s), and the layers that run it."""

    name: str
    reasons: tuple[str, ...]
    keys: tuple[str, ...]
    layers: tuple[int, ...]
    doc: str


CHECKS: tuple[CheckInfo, ...] = (
    CheckInfo("duplicate", (Reason.DUPLICATE,), (), (1, 2), "a signal or intent id is decided once"),
    CheckInfo("trading_state", (Reason.TRADING_HALTED, Reason.TRADING_REDUCING), ("trading_state",), (1, 2),
              "HALTED approves nothing; REDUCING only orders that reduce a position"),
    CheckInfo("symbol", (Reason.UNKNOWN_SYMBOL, Reason.SYMBOL_NOT_TRADING), ("exchange_info_file",), (1, 2),
              "with filters loaded, the symbol must be listed and TRADING"),
    CheckInfo("stale_signal", (Reason.STALE_SIGNAL,), ("max_signal_age_s",), (1, 2),
              "signal event time to check time"),
    CheckInfo("stale_market_data", (Reason.STALE_MARKET_DATA,), ("stale_market_data_s",), (1, 2),
              "a last price for the symbol no older than this"),
    CheckInfo("price_band", (Reason.PRICE_BAND,), ("price_band_pct",), (1, 2),
              "reference / limit price within +-X % of the last price"),
    CheckInfo("in_flight", (Reason.ORDER_IN_FLIGHT, Reason.MAX_NUM_ORDERS), (), (2,),
              "one working order per symbol; never more open orders than MAX_NUM_ORDERS"),
    CheckInfo("position_rule", (Reason.POSITION_OPEN, Reason.NO_POSITION), (), (1, 2),
              "long-only spot: BUY opens from flat, SELL closes what is held"),
    CheckInfo("open_positions", (Reason.MAX_OPEN_POSITIONS,), ("max_open_positions",), (1, 2),
              "symbols held at once, working BUYs included"),
    CheckInfo("rate", (Reason.RATE_LIMIT, Reason.RATE_LIMIT_SYMBOL),
              ("max_orders_per_minute", "max_orders_per_minute_per_symbol"), (1, 2),
              "sliding 60 s window of approved orders, global and per symbol"),
    CheckInfo("order_notional", (Reason.MAX_ORDER_NOTIONAL,), ("max_order_notional",), (1, 2),
              "cut down to the limit (REDUCED)"),
    CheckInfo("position_notional", (Reason.MAX_POSITION_NOTIONAL,), ("max_position_notional",), (1, 2),
              "BUY cut down to the symbol's headroom"),
    CheckInfo("position_qty", (Reason.MAX_POSITION_QTY,), ("max_position_qty",), (1, 2),
              "BUY cut down to the symbol's quantity headroom"),
    CheckInfo("gross_exposure", (Reason.MAX_GROSS_EXPOSURE,), ("max_gross_exposure",), (1, 2),
              "BUY cut down to the account's headroom"),
    CheckInfo("balance", (Reason.INSUFFICIENT_BALANCE,), ("fee_rate",), (1, 2),
              "BUY within free cash (fees included), SELL within the free base balance"),
    CheckInfo("exchange_filters",
              (Reason.PRICE_FILTER, Reason.PERCENT_PRICE_BY_SIDE, Reason.LOT_SIZE, Reason.MARKET_LOT_SIZE,
               Reason.MIN_NOTIONAL, Reason.NOTIONAL, Reason.QUOTE_ORDER_QTY_MARKET), ("exchange_info_file",),
              (1, 2), "quantized toward safety, rejected with the filter's name when unsatisfiable"),
    CheckInfo("daily_loss", (Reason.DAILY_LOSS_LIMIT,), ("daily_loss_limit", "daily_loss_pct"), (1, 2),
              "trigger: REDUCING until the next UTC day"),
    CheckInfo("drawdown", (Reason.MAX_DRAWDOWN,), ("max_drawdown_pct",), (1, 2),
              "trigger: REDUCING until an operator resets"),
    CheckInfo("loss_streak", (Reason.LOSS_STREAK_COOLDOWN,), ("loss_streak", "loss_streak_cooldown_s"), (1, 2),
              "trigger: REDUCING for the cooldown after N losing round trips"),
    CheckInfo("exchange_ban", (Reason.EXCHANGE_BAN,), ("exchange_ban_s",), (2,),
              "trigger: HALTED until the ban's Retry-After, reported by the executor"),
)


# -- gates ------------------------------------------------------------------------------------
def check_trading_state(state: TradingState, raises_exposure: bool, lock: str | None) -> Failure | None:
    """HALTED blocks every new order; REDUCING blocks orders that raise exposure. Cancels never
    reach this check: they always pass. The lock's own reason (e.g. DAILY_LOSS_LIMIT) follows."""
    if state is TradingState.HALTED:
        return Failure((Reason.TRADING_HALTED, lock) if lock else (Reason.TRADING_HALTED,), "trading state HALTED")
    if state is TradingState.REDUCING and raises_exposure:
        return Failure((Reason.TRADING_REDUCING, lock) if lock else (Reason.TRADING_REDUCING,),
                       "trading state REDUCING: only orders that reduce a position")
    return None


def check_signal_age(now: int, event_time: int, max_age_ms: int) -> Failure | None:
    if max_age_ms > 0 and now - event_time > max_age_ms:
        return Failure((Reason.STALE_SIGNAL,),
                       f"signal is {(now - event_time) / 1000:.3f} s old, max {max_age_ms / 1000:g} s")
    return None


def check_market_data(last: tuple[float, int] | None, now: int, stale_ms: int) -> Failure | None:
    if stale_ms <= 0:
        return None
    if last is None:
        return Failure((Reason.STALE_MARKET_DATA,), "no price for the symbol yet")
    if now - last[1] > stale_ms:
        age = (now - last[1]) / 1000
        return Failure((Reason.STALE_MARKET_DATA,), f"last price is {age:.3f} s old, max {stale_ms / 1000:g} s")
    return None


def check_price_band(price: float, last_price: float, band_pct: float) -> Failure | None:
    if band_pct > 0 and abs(price - last_price) > last_price * band_pct / 100.0:
        return Failure((Reason.PRICE_BAND,),
                       f"price {price} is more than {band_pct:g} % from the last price {last_price}")
    return None


def check_in_flight(working: int, max_num_orders: int) -> Failure | None:
    """The exchange's MAX_NUM_ORDERS first, then this system's one working order per symbol."""
    if max_num_orders and working + 1 > max_num_orders:
        return Failure((Reason.MAX_NUM_ORDERS,), f"{working} open orders, filter allows {max_num_orders}")
    if working:
        return Failure((Reason.ORDER_IN_FLIGHT,), f"{working} order(s) working")
    return None


def check_position_rule(buy: bool, held: float, flat: bool) -> Failure | None:
    """Long-only spot: a BUY needs a flat book, a SELL something held. Dust (a balance below the
    exchange's minimum quantity or notional, which cannot be sold) counts as flat."""
    if buy and not flat:
        return Failure((Reason.POSITION_OPEN,), f"already long {held}")
    if not buy and flat:
        return Failure((Reason.NO_POSITION,), f"only dust ({held}) left" if held > 0 else "nothing to sell")
    return None


def check_open_positions(open_count: int, limit: int) -> Failure | None:
    if limit and open_count >= limit:
        return Failure((Reason.MAX_OPEN_POSITIONS,), f"{open_count} positions open, max {limit}")
    return None


def check_rate(blocked: int, cfg: RiskConfig) -> Failure | None:
    if blocked == 1:
        return Failure((Reason.RATE_LIMIT,), f"{cfg.max_orders_per_minute} orders in the last 60 s")
    if blocked == 2:
        return Failure((Reason.RATE_LIMIT_SYMBOL,),
                       f"{cfg.max_orders_per_minute_per_symbol} orders for the symbol in 60 s")
    return None


# -- sizing -----------------------------------------------------------------------------------
def cap_buy_notional(notional: float, price: float, cfg: RiskConfig, held_qty: float, pending_symbol: float,
                     gross: float, max_qty: float, cuts: list[str]) -> tuple[float, Failure | None]:
    """Cut a BUY's quote amount to every exposure limit; fail when no headroom is left."""
    if 0 < cfg.max_order_notional < notional:
        notional = cfg.max_order_notional
        cuts.append(Reason.MAX_ORDER_NOTIONAL)
    if cfg.max_position_notional > 0:
        room = cfg.max_position_notional - held_qty * price - pending_symbol
        if notional > room:
            if room <= 0:
                return 0.0, Failure((Reason.MAX_POSITION_NOTIONAL,), f"position at {held_qty * price:.2f}, "
                                                           f"max {cfg.max_position_notional}")
            notional = room
            cuts.append(Reason.MAX_POSITION_NOTIONAL)
    if max_qty > 0:
        room = (max_qty - held_qty) * price
        if notional > room:
            if room <= 0:
                return 0.0, Failure((Reason.MAX_POSITION_QTY,), f"holding {held_qty}, max {max_qty}")
            notional = room
            cuts.append(Reason.MAX_POSITION_QTY)
    if cfg.max_gross_exposure > 0:
        room = cfg.max_gross_exposure - gross
        if notional > room:
            if room <= 0:
                return 0.0, Failure((Reason.MAX_GROSS_EXPOSURE,),
                                    f"gross exposure {gross:.2f}, max {cfg.max_gross_exposure}")
            notional = room
            cuts.append(Reason.MAX_GROSS_EXPOSURE)
    return notional, None


def cap_sell_qty(qty: float, price: float, cfg: RiskConfig, cuts: list[str]) -> float:
    """A SELL only lowers exposure, so only the per-order notional limit applies to it."""
    if cfg.max_order_notional > 0 and qty * price > cfg.max_order_notional:
        cuts.append(Reason.MAX_ORDER_NOTIONAL)
        return cfg.max_order_notional / price
    return qty


def check_buy_balance(cost: float, available: float) -> Failure | None:
    if cost > available:
        return Failure((Reason.INSUFFICIENT_BALANCE,), f"needs {cost:.8f}, free {available:.8f}")
    return None


# -- triggers ---------------------------------------------------------------------------------
def daily_loss_breach(account: AccountSnapshot, cfg: RiskConfig) -> str | None:
    """Realized + unrealized loss since the UTC day's start, absolute or as % of that equity."""
    start = account.day_start_equity
    loss = start - account.equity
    if loss <= 0:
        return None
    if cfg.daily_loss_limit > 0 and loss >= cfg.daily_loss_limit:
        return f"lost {loss:.2f} today, limit {cfg.daily_loss_limit:g}"
    if cfg.daily_loss_pct > 0 and start > 0 and loss >= start * cfg.daily_loss_pct / 100.0:
        return f"lost {loss / start * 100:.2f} % today, limit {cfg.daily_loss_pct:g} %"
    return None


def daily_loss_used(account: AccountSnapshot, cfg: RiskConfig) -> float:
    """Share of the tighter daily loss limit lost since the UTC day's start: 1.0 is where
    `daily_loss_breach` sets REDUCING; 0.0 with no loss or both limits off. What the alerts watch."""
    start = account.day_start_equity
    loss = start - account.equity
    limits = [cfg.daily_loss_limit] if cfg.daily_loss_limit > 0 else []
    if cfg.daily_loss_pct > 0 and start > 0:
        limits.append(start * cfg.daily_loss_pct / 100.0)
    if loss <= 0 or not limits:
        return 0.0
    return loss / min(limits)


def drawdown_breach(account: AccountSnapshot, cfg: RiskConfig) -> str | None:
    peak = account.peak_equity
    if cfg.max_drawdown_pct > 0 and peak > 0 and peak - account.equity >= peak * cfg.max_drawdown_pct / 100.0:
        return f"equity {account.equity:.2f} is {(peak - account.equity) / peak * 100:.2f} % below peak {peak:.2f}"
    return None


def loss_streak_breach(consecutive_losses: int, mark: int, streak: int) -> bool:
    """N new losing round trips since the last cooldown (a win resets the streak to 0)."""
    return streak > 0 and consecutive_losses - mark >= streak
