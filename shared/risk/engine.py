"""The risk engine: one implementation serving both layers.

Layer 1 (the `risk` Function) turns a signal into an intent using what it can know cheaply: the
signal, the symbol's exchange filters and the latest account snapshot. Layer 2 (the executor's
last look) re-runs the same checks on the intent against the exact account and the orders still
in flight, just before sending; only it can guarantee account-wide limits, because the executor
is the single writer of orders.

Both layers return `(decision, intent)`: a rejection is a REJECTED decision and no intent; an
approval is the intent alone, as NautilusTrader's risk engine emits events only for denials (an
approval is visible as the order it lets through, and counted); an approval cut down to a limit
is the intent plus a REDUCED decision naming what was cut.

Everything is a function of the inputs and their event times (no wall clock, no randomness), so
the same sequence of inputs always yields the same decisions, and a replay is deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from typing import Any, Literal, NamedTuple

from shared.events import (
    DecisionStatus,
    OrderIntent,
    OrderType,
    RiskDecision,
    Side,
    Signal,
    TradingStateChanged,
)
from shared.events.base import SCHEMA_VERSION, trusted
from shared.portfolio import AccountSnapshot

from . import checks as C
from .config import RiskConfig
from .filters import ExchangeFilters, SymbolFilters
from .reasons import Failure, Reason
from .states import JsonFileStateStore, Listener, Lock, StateStore, TradingState, TradingStateMachine
from .throttle import RateLimiter

DEDUP_CAPACITY = 100_000
_BAN_STATUSES = frozenset({418, 429})
_BAN_CODES = frozenset({-1003})



class Sized(NamedTuple):
    """An approved order's size after every check: the checks' counterpart of `Failure`."""

    qty: float | None
    quote: float | None
    limit: float | None
    cuts: list[str]      # reason codes of the limits it was cut down to (REDUCED when any)


class _Order(NamedTuple):
    """What the shared checks read of a signal (layer 1) or an intent (layer 2)."""

    symbol: str
    buy: bool
    qty: float | None
    quote: float | None
    limit: float | None
    ref_price: float
    event_time: int


class RiskEngine:
    """Pre-trade checks, trading state and market state of one account."""

    def __init__(self, config: RiskConfig | None = None, *, filters: ExchangeFilters | None = None,
                 store: StateStore | None = None, listener: Listener | None = None, now: int = 0) -> None:
        cfg = self.config = config or RiskConfig()
        if store is None and cfg.state_file is not None:
            store = JsonFileStateStore(cfg.state_file)
        if filters is None and cfg.exchange_info_file is not None:
            filters = ExchangeFilters.from_file(cfg.exchange_info_file)
        self.filters = filters
        self._fs: dict[str, SymbolFilters] | None = dict(filters) if filters is not None else None
        self.states = TradingStateMachine(store, cfg.trading_state, listener, now,
                                          refresh_ms=round(cfg.state_refresh_s * 1000))
        self._px: dict[str, tuple[float, int]] = {}
        self._clock = 0
        self._seen = (_SeenIds(), _SeenIds())
        self._rates = (RateLimiter(cfg.max_orders_per_minute, cfg.max_orders_per_minute_per_symbol),
                       RateLimiter(cfg.max_orders_per_minute, cfg.max_orders_per_minute_per_symbol))
        self._signal_ms = round(cfg.max_signal_age_s * 1000)
        self._stale_ms = round(cfg.stale_market_data_s * 1000)
        self._max_qty = cfg.max_position_qty
        self._rates_on = cfg.max_orders_per_minute > 0 or cfg.max_orders_per_minute_per_symbol > 0
        # Counters, per layer (index 0 = layer 1, 1 = layer 2).
        self._approved = [0, 0]
        self._approvals_taken = (0, 0)  # `_approved` at the last take_approvals()
        self._reduced = [0, 0]
        self._rejected = [0, 0]
        self._rejections: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._cuts: dict[str, int] = {}

    # -- market state ------------------------------------------------------------------------
    def set_filters(self, filters: ExchangeFilters | None) -> None:
        """Replace the exchange filters (the Binance venue re-reads exchangeInfo hourly and after a
        filter failure, and hands the new filters here)."""
        self.filters = filters
        self._fs = dict(filters) if filters is not None else None

    def on_market(self, symbol: str, price: float, time: int) -> None:
        """The latest price of a symbol (O(1); called per bar or tick). Older prices are ignored."""
        last = self._px.get(symbol)
        if last is None or time >= last[1]:
            self._px[symbol] = (price, time)
        if time > self._clock:
            self._clock = time

    def last_price(self, symbol: str) -> tuple[float, int] | None:
        return self._px.get(symbol)

    # -- trading state -----------------------------------------------------------------------
    @property
    def trading_state(self) -> TradingState:
        return self.states.state

    @property
    def state_events(self) -> list[TradingStateChanged]:
        """The latest trading-state changes (at most `states.STATE_EVENTS_WINDOW`)."""
        return list(self.states.events)

    def kill(self, who: str, why: str, now: int) -> TradingStateChanged | None:
        """The kill switch: HALTED by hand until an operator sets another state."""
        return self.states.set_state(TradingState.HALTED, who, f"{Reason.KILL_SWITCH}: {why}", now)

    def set_trading_state(self, state: TradingState | str, who: str, why: str, now: int) -> TradingStateChanged | None:
        """An operator's change; ACTIVE or REDUCING also acknowledges the automatic locks."""
        return self.states.set_state(TradingState(state), who, why, now)

    def report_exchange_error(self, http_status: int | None, code: int | None, now: int,
                              retry_after_s: float | None = None, detail: str = "") -> bool:
        """Called by the executor on every error response; a ban (HTTP 418/429 or code -1003)
        sets HALTED until Retry-After lapses, since any further order would lengthen the ban.
        Returns True when it was a ban."""
        if http_status not in _BAN_STATUSES and code not in _BAN_CODES:
            return False
        wait_ms = round((retry_after_s if retry_after_s else self.config.exchange_ban_s) * 1000)
        until = now + wait_ms
        for lk in self.states.record.locks:
            if lk.source == Reason.EXCHANGE_BAN and lk.until is not None and lk.until >= until:
                return True
        why = f"HTTP {http_status} code {code}: {detail}".strip()
        self.states.add_lock(Lock(Reason.EXCHANGE_BAN, TradingState.HALTED, why, now, until), "exchange", now)
        return True

    def evaluate(self, account: AccountSnapshot, now: int) -> TradingState:
        """Apply the automatic triggers to an account and expire lapsed locks; every check does
        this first, and a positions service may call it on each snapshot. The guards in front of
        each trigger keep the common case (no loss) to a few comparisons."""
        cfg = self.config
        states = self.states
        equity = account.equity
        if equity < account.day_start_equity:
            detail = C.daily_loss_breach(account, cfg)
            if detail is not None:
                day = (account.time or now) // C.DAY_MS
                key = f"{Reason.DAILY_LOSS_LIMIT}:{day}"
                if key not in states.record.fired:
                    lock = Lock(Reason.DAILY_LOSS_LIMIT, TradingState.REDUCING, detail, now, (day + 1) * C.DAY_MS)
                    states.add_lock(lock, "risk:daily_loss", now, fired_key=key)
        if equity < account.peak_equity:
            detail = C.drawdown_breach(account, cfg)
            if detail is not None:
                key = f"{Reason.MAX_DRAWDOWN}:{account.peak_equity!r}"
                if key not in states.record.fired:
                    lock = Lock(Reason.MAX_DRAWDOWN, TradingState.REDUCING, detail, now)
                    states.add_lock(lock, "risk:drawdown", now, fired_key=key)
        losses = account.consecutive_losses
        if losses < states.record.streak_mark:
            states.set_streak_mark(0, now)  # a win ended the streak
        if losses and C.loss_streak_breach(losses, states.record.streak_mark, cfg.loss_streak):
            states.set_streak_mark(losses, now)
            until = now + round(cfg.loss_streak_cooldown_s * 1000)
            lock = Lock(Reason.LOSS_STREAK_COOLDOWN, TradingState.REDUCING,
                        f"{losses} losing round trips in a row", now, until)
            states.add_lock(lock, "risk:loss_streak", now)
        return states.current(now)

    # -- layer 1 -----------------------------------------------------------------------------
    def check_signal(self, signal: Signal, account: AccountSnapshot,
                     now: int | None = None) -> tuple[RiskDecision | None, OrderIntent | None]:
        """Decide on a signal; an approved one becomes a sized OrderIntent (see the module doc).

        `now` defaults to the market clock (the latest `on_market` time), which keeps replays
        deterministic; the live Function passes wall-clock milliseconds.
        """
        now, duplicate = self._admit(1, signal, now)
        if duplicate is not None:
            return duplicate, None
        buy = signal.side is Side.BUY
        if buy:
            budget = account.equity * self.config.order_equity_share
            cash = account.cash
            qty, quote = None, (budget if budget < cash else cash)
        else:
            qty, quote = account.qty(signal.symbol), None
        out = self._evaluate(1, _Order(signal.symbol, buy, qty, quote, None, signal.price, signal.event_time),
                             account, now, ())
        if isinstance(out, Failure):
            return self._reject(1, signal, out.reasons, out.detail, now), None
        qty, quote, _, cuts = out
        _check_size(qty, quote)
        # Every other field comes from the validated signal: see `trusted`.
        intent = trusted(OrderIntent, {
            "schema_version": SCHEMA_VERSION, "event_id": OrderIntent.make_id(signal.event_id),
            "correlation_id": signal.correlation_id, "event_time": signal.event_time, "type": "order_intent",
            "symbol": signal.symbol, "strategy": signal.strategy, "side": signal.side, "order_type": OrderType.MARKET,
            "quantity": qty, "quote_quantity": quote, "limit_price": None, "reference_price": signal.price,
            "reduce_only": not buy, "reduced": bool(cuts), "signal_id": signal.event_id})
        return self._approve(1, signal.event_id, intent, cuts, now), intent

    # -- layer 2 -----------------------------------------------------------------------------
    def last_look(self, intent: OrderIntent, account: AccountSnapshot,
                  in_flight: Collection[OrderIntent] | int = (),
                  now: int | None = None) -> tuple[RiskDecision | None, OrderIntent | None]:
        """Authoritative check against the exact account and the orders in flight (intents, or
        a count of working orders for the symbol). An approval may be cut down (REDUCED)."""
        now, duplicate = self._admit(2, intent, now)
        if duplicate is not None:
            return duplicate, None
        buy = intent.side is Side.BUY
        limit = intent.limit_price if intent.order_type is OrderType.LIMIT else None
        out = self._evaluate(2, _Order(intent.symbol, buy, intent.quantity, intent.quote_quantity, limit,
                                       intent.reference_price, intent.event_time), account, now, in_flight)
        if isinstance(out, Failure):
            return self._reject(2, intent, out.reasons, out.detail, now), None
        qty, quote, limit_price, cuts = out
        if cuts or qty != intent.quantity or quote != intent.quote_quantity or limit_price != intent.limit_price:
            # Cut down, or only quantized to the exchange's steps; validated again, never copied blind.
            data = intent.model_dump()
            data.update(quantity=qty, quote_quantity=quote, limit_price=limit_price,
                        reduced=intent.reduced or bool(cuts))
            intent = _validate_intent(data)
        return self._approve(2, intent.event_id, intent, cuts, now), intent

    # -- the shared checks -------------------------------------------------------------------
    def _admit(self, layer: Literal[1, 2], subject: Signal | OrderIntent,
               now: int | None) -> tuple[int, RiskDecision | None]:
        """The check time (default: the market clock, never before the subject's event time) and,
        for an id this layer already decided, its DUPLICATE rejection; else the id is recorded."""
        if now is None:
            now = self._clock if self._clock > subject.event_time else subject.event_time
        seen = self._seen[layer - 1]
        if subject.event_id in seen.ids:
            what = "signal" if layer == 1 else "intent"
            return now, self._reject(layer, subject, (Reason.DUPLICATE,), f"{what} already decided", now)
        seen.add(subject.event_id)
        return now, None

    def _evaluate(self, layer: int, order: _Order, account: AccountSnapshot, now: int,
                  in_flight: Collection[OrderIntent] | int) -> Sized | Failure:
        """Run every check in the order of `checks.CHECKS`; the first failure rejects."""
        cfg = self.config
        symbol, buy, qty, _quote, limit, ref_price, event_time = order
        state = self.evaluate(account, now)
        if state is not TradingState.ACTIVE:
            fail = C.check_trading_state(state, buy, self.states.lock_reason())
            if fail is not None:
                return fail
        fs: SymbolFilters | None = None
        if self._fs is not None:
            fs = self._fs.get(symbol)
            if fs is None:
                return Failure((Reason.UNKNOWN_SYMBOL,), f"{symbol} is not in the exchange filters")
            if fs.status != "TRADING":
                return Failure((Reason.SYMBOL_NOT_TRADING,), f"{symbol} status {fs.status}")
        fail = C.check_signal_age(now, event_time, self._signal_ms)
        if fail is not None:
            return fail
        last = self._px.get(symbol)
        if last is None:
            # No feed for this symbol in this process (the `risk` Function reads only signals): the
            # signal's bar close, observed at its event time, is the freshest market price known.
            last = (ref_price, event_time)
        fail = C.check_market_data(last, now, self._stale_ms)
        if fail is not None:
            return fail
        price = last[0]
        band = cfg.price_band_pct
        if band > 0:
            fail = C.check_price_band(ref_price, price, band)
            if fail is None and limit is not None:
                fail = C.check_price_band(limit, price, band)
            if fail is not None:
                return fail

        # Orders in flight: layer 2 knows them exactly; layer 1 passes none.
        pending_total = pending_symbol = 0.0
        pending_buy_symbols: set[str] | None = None
        if isinstance(in_flight, int):
            working = in_flight
        else:
            working = 0
            if in_flight:
                pending_buy_symbols = set()
                for o in in_flight:
                    if o.symbol == symbol:
                        working += 1
                    if o.side is Side.BUY:
                        amount = o.quote_quantity if o.quote_quantity is not None else (o.quantity or 0.0) * (
                            o.limit_price or o.reference_price)
                        pending_total += amount
                        pending_buy_symbols.add(o.symbol)
                        if o.symbol == symbol:
                            pending_symbol += amount
        if layer == 2:
            fail = C.check_in_flight(working, fs.max_num_orders if fs is not None else 0)
            if fail is not None:
                return fail

        positions = account.positions
        pos = positions.get(symbol)
        held = pos[0] if pos is not None else 0.0
        fail = C.check_position_rule(buy, held, held <= 0 or (fs is not None and fs.is_dust(held, price)))
        if fail is not None:
            return fail
        max_open = cfg.max_open_positions
        # Counting needs a pass over the positions; skip it when there are too few to reach the limit.
        if buy and max_open and len(positions) + (len(pending_buy_symbols) if pending_buy_symbols else 0) >= max_open:
            fail = C.check_open_positions(self._open_positions(positions, symbol, pending_buy_symbols), max_open)
            if fail is not None:
                return fail
        rates = self._rates[layer - 1] if self._rates_on else None
        if rates is not None:
            fail = C.check_rate(rates.blocked(symbol, now), cfg)
            if fail is not None:
                return fail

        cuts: list[str] = []
        if buy:
            out = self._size_buy(order, price, held, pending_symbol, pending_total, account, fs, cuts)
        else:
            out = self._size_sell(qty, limit, price, held, fs, cuts)
        if rates is not None and isinstance(out, Sized):
            rates.record(symbol, now)
        return out

    def _open_positions(self, positions: dict[str, tuple[float, float, float]], symbol: str,
                        pending_buy_symbols: set[str] | None) -> int:
        """Symbols held other than `symbol` (dust below the exchange minimum not counted), plus
        symbols with a working BUY and no position yet."""
        fs_get = self._fs.get if self._fs is not None else None
        count = 0
        for sym, (q, _, mark) in positions.items():
            if q <= 0 or sym == symbol:
                continue
            fs = fs_get(sym) if fs_get is not None else None
            if fs is None or (q >= fs.lot_min and q * mark >= fs.min_notional):  # SymbolFilters.holds, inlined
                count += 1
        if pending_buy_symbols:
            count += len(pending_buy_symbols - positions.keys() - {symbol})
        return count

    def _size_buy(self, order: _Order, price: float, held: float, pending_symbol: float, pending_total: float,
                  account: AccountSnapshot, fs: SymbolFilters | None, cuts: list[str]) -> Sized | Failure:
        """Cut a BUY to the exposure limits (`held`: base units of the symbol; `pending_*`: working
        BUYs of the symbol and of all symbols, in quote), check the free cash, then quantize it."""
        cfg = self.config
        qty, quote, limit, symbol = order.qty, order.quote, order.limit, order.symbol
        gross = pending_total  # every position's notional plus working BUYs
        for q, _, mark in account.positions.values():
            gross += q * mark
        px = limit if limit is not None else price
        notional = quote if quote is not None else (qty or 0.0) * px
        if notional <= 0:
            return Failure((Reason.INSUFFICIENT_BALANCE,), f"cash {account.cash}")
        capped, fail = C.cap_buy_notional(notional, px, cfg, held, pending_symbol, gross,
                                          self._max_qty.get(symbol, 0.0) if self._max_qty else 0.0, cuts)
        if fail is not None:
            return fail
        if capped < notional:
            if quote is not None:
                quote = capped
            else:
                qty = capped / px
        available = account.cash - pending_total
        if quote is not None:
            fail = C.check_buy_balance(quote, available)
            if fail is None and fs is not None:
                quote, fail = fs.market_buy(quote, price, cuts)
            if fail is not None:
                return fail
            return Sized(None, quote, None, cuts)
        assert qty is not None
        if limit is not None:
            if fs is not None:
                qty, limit, fail = fs.limit(True, qty, limit, price, cuts)
                if fail is not None:
                    return fail
            fail = C.check_buy_balance(qty * limit * (1.0 + cfg.fee_rate), available)
        else:
            if fs is not None:
                qty, fail = fs.market_sell(qty, price, cuts)  # the same quantity rules apply to a BUY
                if fail is not None:
                    return fail
            fail = C.check_buy_balance(qty * price * (1.0 + cfg.fee_rate), available)
        if fail is not None:
            return fail
        return Sized(qty, None, limit, cuts)

    def _size_sell(self, qty: float | None, limit: float | None, price: float, held: float,
                   fs: SymbolFilters | None, cuts: list[str]) -> Sized | Failure:
        """Never more than the free balance (net of fees taken in the base asset), cut to the
        order notional limit, then rounded down to the filters."""
        if qty is None or qty <= 0:
            return Failure((Reason.NO_POSITION,), "a SELL needs a quantity")
        if qty > held:
            qty = held
            cuts.append(Reason.INSUFFICIENT_BALANCE)
        px = limit if limit is not None else price
        qty = C.cap_sell_qty(qty, px, self.config, cuts)
        if fs is not None:
            if limit is not None:
                qty, limit, fail = fs.limit(False, qty, limit, price, cuts)
            else:
                qty, fail = fs.market_sell(qty, price, cuts)
            if fail is not None:
                return fail
        return Sized(qty, None, limit, cuts)

    # -- decisions and counters --------------------------------------------------------------
    def _approve(self, layer: Literal[1, 2], subject_id: str, intent: OrderIntent, cuts: list[str],
                 now: int) -> RiskDecision | None:
        """Count an approval; only one cut down to a limit is a (REDUCED) decision event."""
        i = layer - 1
        if not cuts:
            self._approved[i] += 1
            return None
        self._reduced[i] += 1
        reasons = tuple(dict.fromkeys(map(str, cuts)))  # plain strings, each once
        for r in reasons:
            self._cuts[r] = self._cuts.get(r, 0) + 1
        return RiskDecision.create(layer=layer, subject_id=subject_id, symbol=intent.symbol,
                                   status=DecisionStatus.REDUCED, reasons=reasons, detail="",
                                   correlation_id=intent.correlation_id, event_time=now)

    def take_approvals(self) -> tuple[int, int]:
        """Approvals (layer 1, layer 2) since the previous call: approvals are not events, so a
        process hands these to the decisions metric after each batch."""
        now = (self._approved[0], self._approved[1])
        before = self._approvals_taken
        self._approvals_taken = now
        return now[0] - before[0], now[1] - before[1]

    def _reject(self, layer: Literal[1, 2], subject: Signal | OrderIntent, reasons: tuple[str, ...], detail: str,
                now: int) -> RiskDecision:
        i = layer - 1
        self._rejected[i] += 1
        codes = tuple(map(str, reasons))  # plain strings for counters and the wire
        counts = self._rejections[i]
        for r in codes:
            counts[r] = counts.get(r, 0) + 1
        return RiskDecision.create(layer=layer, subject_id=subject.event_id, symbol=subject.symbol,
                                   status=DecisionStatus.REJECTED, reasons=codes, detail=detail,
                                   correlation_id=subject.correlation_id, event_time=now)

    @property
    def rejections(self) -> dict[str, int]:
        """Reason code -> rejected decisions carrying it, both layers."""
        out = dict(self._rejections[0])
        for r, n in self._rejections[1].items():
            out[r] = out.get(r, 0) + n
        return out

    @property
    def reduced(self) -> int:
        """Decisions that approved an order cut down to a limit, both layers."""
        return self._reduced[0] + self._reduced[1]

    def counters(self) -> dict[str, Any]:
        """Plain data for telemetry: decisions per layer and outcome, reasons, trading state."""
        state = self.states.state
        return {
            "trading_state": state.value,
            "trading_state_level": state.severity,
            "locks": [str(lk.source) for lk in self.states.record.locks],
            "state_changes": self.states.record.version,
            "layer1": {"approved": self._approved[0], "reduced": self._reduced[0], "rejected": self._rejected[0]},
            "layer2": {"approved": self._approved[1], "reduced": self._reduced[1], "rejected": self._rejected[1]},
            "rejections": self.rejections,
            "rejections_layer1": dict(self._rejections[0]),
            "rejections_layer2": dict(self._rejections[1]),
            "reductions": dict(self._cuts),
            "reduced": self.reduced,
        }

    # -- restart -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The engine's memory besides the trading state (which its store persists): decided
        ids, rate windows and last prices, so a restarted engine neither re-approves a redelivered
        signal nor reopens a full rate window."""
        return {
            "seen": [list(self._seen[0].order), list(self._seen[1].order)],
            "rates": [self._rates[0].snapshot(), self._rates[1].snapshot()],
            "prices": {s: [p, t] for s, (p, t) in self._px.items()},
            "clock": self._clock,
        }

    def restore(self, snap: dict[str, Any]) -> None:
        self._seen = (_SeenIds(snap["seen"][0]), _SeenIds(snap["seen"][1]))
        self._rates[0].restore(snap["rates"][0])
        self._rates[1].restore(snap["rates"][1])
        self._px = {s: (float(p), int(t)) for s, (p, t) in snap["prices"].items()}
        self._clock = int(snap["clock"])


# The intent's own validator, called with a dict: the same validation as the constructor, without
# building keyword arguments; used where the last look changed an intent.
_validate_intent = OrderIntent.__pydantic_validator__.validate_python
_INF = float("inf")


def _check_size(qty: float | None, quote: float | None) -> None:
    """What OrderIntent's validator checks of a size, for the intent layer 1 builds unvalidated:
    exactly one of quantity and quote quantity, positive and finite. Sizing guarantees it; a
    breach is a bug and raises rather than reaching the exchange."""
    size = quote if qty is None else qty
    if (qty is None) == (quote is None) or not 0.0 < size < _INF:  # type: ignore[operator]
        raise ValueError(f"risk sized an invalid order: quantity={qty!r} quote_quantity={quote!r}")


class _SeenIds:
    """Bounded set of decided ids: the oldest go first once `DEDUP_CAPACITY` is reached."""

    __slots__ = ("ids", "order")

    def __init__(self, ids: list[str] | None = None) -> None:
        self.order: deque[str] = deque(ids or ())
        self.ids: set[str] = set(self.order)

    def __contains__(self, key: str) -> bool:
        return key in self.ids

    def add(self, key: str) -> None:
        self.ids.add(key)
        self.order.append(key)
        if len(self.order) > DEDUP_CAPACITY:
            self.ids.discard(self.order.popleft())
