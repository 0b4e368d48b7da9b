"""The position book: balances, positions at average cost, PnL, equity and closed round trips.

Driven by execution reports (fills) and price marks. Fees are booked in the asset the exchange
charged them in: Binance takes a buy's fee from the bought (base) asset unless BNB pays it, so the
held quantity is the filled quantity minus that fee, and a later full sell sells what is held.
A fee paid in a third asset (BNB) comes out of that asset's balance (`deposit` it first); with a
price for it (`mark_asset`) the fee is valued into cost, PnL and equity.
A fill is identified by (client order id, trade id); applying it twice changes nothing. The ids
seen are a bounded window (`SEEN_FILLS_WINDOW`, the most recent kept): the executor's intent store
is the durable record of which fills a book holds, so the window only has to cover fills that
can still arrive twice (those of open orders). `trades_window` bounds the closed round trips kept
in memory likewise (None, the replay's default, keeps all).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from shared.events import ExecutionReport, Side

DAY_MS = 86_400_000
SEEN_FILLS_WINDOW = 10_000  # fill ids kept for deduplication: between this and twice this many


@dataclass(slots=True)
class Position:
    """An open long position in one symbol. `cost` is the quote paid for `qty`, fees included."""

    symbol: str
    base_asset: str
    quote_asset: str
    qty: float = 0.0
    cost: float = 0.0
    mark: float = 0.0
    # Round-trip bookkeeping for the closed-trade record.
    entry_time: int = 0
    entry_qty: float = 0.0
    entry_notional: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    fees_quote: float = 0.0
    realized: float = 0.0
    # Price of the last fill on each side and the fill counts: a one-fill leg reports its exact
    # price instead of notional/qty, which float division can move by an ulp.
    entry_fills: int = 0
    exit_fills: int = 0
    last_entry_price: float = 0.0
    last_exit_price: float = 0.0

    @property
    def avg_price(self) -> float:
        return self.cost / self.qty if self.qty > 0 else 0.0

    @property
    def unrealized(self) -> float:
        return self.qty * self.mark - self.cost


class ClosedTrade(NamedTuple):
    """One completed round trip, flat to long to flat (what trades.csv lists). A tuple: immutable,
    and one is built per round trip on the fill path."""

    symbol: str
    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    size: float
    pnl: float
    return_pct: float
    commission: float


class AccountSnapshot(NamedTuple):
    """What risk sees of the account: read-only, and a tuple because both risk layers take one
    per decision (a frozen dataclass costs four times as much to build)."""

    cash: float
    equity: float
    peak_equity: float
    day_start_equity: float
    realized_pnl: float
    positions: dict[str, tuple[float, float, float]]  # symbol -> (qty, avg_price, mark)
    consecutive_losses: int
    time: int

    def qty(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        return pos[0] if pos else 0.0

    @property
    def gross_exposure(self) -> float:
        return sum(q * m for q, _, m in self.positions.values())


@dataclass(slots=True)
class _State:
    quote_asset: str
    cash: float
    balances: dict[str, float] = field(default_factory=dict)  # other assets (e.g. BNB for fees)
    asset_marks: dict[str, float] = field(default_factory=dict)  # quote price of those assets
    positions: dict[str, Position] = field(default_factory=dict)
    realized_pnl: float = 0.0
    fees: dict[str, float] = field(default_factory=dict)
    peak_equity: float = 0.0
    day: int = -1
    day_start_equity: float = 0.0
    consecutive_losses: int = 0
    time: int = 0
    seen_fills: list[str] = field(default_factory=list)


_STATE_FIELDS = tuple(f.name for f in fields(_State))
_POSITION_FIELDS = tuple(f.name for f in fields(Position))


class PositionBook:
    """Balances and positions of one spot account, in one quote asset."""

    def __init__(self, cash: float, quote_asset: str = "USDT", dust: float = 1e-12,
                 trades_window: int | None = None) -> None:
        if cash < 0:
            raise ValueError("cash must be >= 0")
        self._s = _State(quote_asset=quote_asset, cash=cash, peak_equity=cash, day_start_equity=cash)
        self._snap: AccountSnapshot | None = None  # the last snapshot_account(), until the book changes
        self._seen: set[str] = set()
        self.dust = dust
        self.trades_window = trades_window
        self.closed_trades: list[ClosedTrade] = []

    # -- reads -------------------------------------------------------------------------------
    @property
    def cash(self) -> float:
        return self._s.cash

    @property
    def quote_asset(self) -> str:
        return self._s.quote_asset

    @property
    def realized_pnl(self) -> float:
        return self._s.realized_pnl

    @property
    def fees(self) -> dict[str, float]:
        return dict(self._s.fees)

    @property
    def peak_equity(self) -> float:
        return self._s.peak_equity

    def position(self, symbol: str) -> Position | None:
        return self._s.positions.get(symbol)

    def qty(self, symbol: str) -> float:
        pos = self._s.positions.get(symbol)
        return pos.qty if pos else 0.0

    def balance(self, asset: str) -> float:
        if asset == self._s.quote_asset:
            return self._s.cash
        for pos in self._s.positions.values():
            if pos.base_asset == asset:
                return pos.qty
        return self._s.balances.get(asset, 0.0)

    @property
    def equity(self) -> float:
        """Cash, positions at their marks and other balances (BNB) at theirs."""
        s = self._s
        eq = s.cash
        for pos in s.positions.values():
            eq += pos.qty * pos.mark
        if s.balances:
            eq += self._other_assets()
        return eq

    def _other_assets(self) -> float:
        marks = self._s.asset_marks
        return sum(bal * marks.get(asset, 0.0) for asset, bal in self._s.balances.items())

    def deposit(self, asset: str, amount: float) -> None:
        """Credit (or, negative, debit) a balance: the quote asset or a fee asset such as BNB.

        A deposit is capital, not profit: the day's starting equity and the peak move with it, so
        the daily-loss and drawdown limits measure trading results only.
        """
        self._snap = None
        s = self._s
        if asset == s.quote_asset:
            s.cash += amount
            value = amount
        else:
            s.balances[asset] = s.balances.get(asset, 0.0) + amount
            value = amount * s.asset_marks.get(asset, 0.0)
        s.day_start_equity += value
        s.peak_equity += value

    def mark_asset(self, asset: str, price: float) -> None:
        """The quote price of a fee asset such as BNB, so its balance and the fees count in equity.
        Its first price values a deposit (capital); later changes are gains or losses."""
        self._snap = None
        if price < 0:
            raise ValueError("price must be >= 0")
        s = self._s
        if asset not in s.asset_marks:
            value = s.balances.get(asset, 0.0) * price
            s.day_start_equity += value
            s.peak_equity += value
        s.asset_marks[asset] = price

    def snapshot_account(self) -> AccountSnapshot:
        """The account as risk sees it. Both layers ask for it per decision, and the book seldom
        changes in between, so it is built once per change (its positions dict is not to be
        mutated)."""
        snap = self._snap
        if snap is None:
            s = self._s
            snap = self._snap = AccountSnapshot(
                s.cash, self.equity, s.peak_equity, s.day_start_equity, s.realized_pnl,
                {k: (p.qty, p.avg_price, p.mark) for k, p in s.positions.items()}, s.consecutive_losses, s.time)
        return snap

    # -- marks -------------------------------------------------------------------------------
    def mark(self, symbol: str, price: float, time: int) -> float:
        """Mark `symbol` at `price` (ms UTC `time`); returns equity and tracks peak and day start."""
        self._snap = None
        s = self._s
        day = time // DAY_MS
        if day != s.day:
            # Day start equity is the equity carried into the new UTC day: taken before this
            # mark moves it, so the day's first price change counts in the day's PnL.
            if s.day >= 0:
                s.day_start_equity = self.equity
            s.day = day
        s.time = time
        eq = s.cash
        positions = s.positions
        if positions:  # flat, equity is the cash (and other balances): nothing to mark
            pos = positions.get(symbol)
            if pos is not None:
                pos.mark = price
            for p in positions.values():
                eq += p.qty * p.mark
        if s.balances:
            eq += self._other_assets()
        if eq > s.peak_equity:
            s.peak_equity = eq
        return eq

    # -- fills -------------------------------------------------------------------------------
    def apply(self, report: ExecutionReport) -> list[ClosedTrade]:
        """Book every new fill of a report; returns the round trips it closed. Idempotent."""
        closed: list[ClosedTrade] = []
        for fill in report.fills:
            key = f"{report.client_order_id}:{fill.trade_id}"
            if key in self._seen:
                continue
            self._seen.add(key)
            seen = self._s.seen_fills
            seen.append(key)
            if len(seen) > 2 * SEEN_FILLS_WINDOW:  # trimmed in chunks: amortized O(1) per fill
                del seen[:SEEN_FILLS_WINDOW]
                self._seen = set(seen)
            trade = self._apply_fill(report, fill.price, fill.quantity, fill.commission,
                                     fill.commission_asset)
            if trade is not None:
                closed.append(trade)
        return closed

    def _apply_fill(self, r: ExecutionReport, price: float, qty: float, fee: float,
                    fee_asset: str) -> ClosedTrade | None:
        self._snap = None
        s = self._s
        if r.quote_asset != s.quote_asset:
            raise ValueError(f"{r.symbol} is quoted in {r.quote_asset}, this book in {s.quote_asset}")
        pos = s.positions.get(r.symbol)
        notional = price * qty
        fee_quote = 0.0      # paid out of cash
        fee_other = 0.0      # quote value of a fee paid in a third asset (BNB)
        if fee_asset == s.quote_asset:
            fee_quote = fee
        elif fee_asset != r.base_asset and fee > 0:
            s.balances[fee_asset] = s.balances.get(fee_asset, 0.0) - fee
            fee_other = fee * s.asset_marks.get(fee_asset, 0.0)
        if fee > 0:
            s.fees[fee_asset] = s.fees.get(fee_asset, 0.0) + fee
        s.time = max(s.time, r.event_time)
        if r.side is Side.BUY:
            if pos is None:
                pos = Position(r.symbol, r.base_asset, r.quote_asset, mark=price, entry_time=r.event_time)
                s.positions[r.symbol] = pos
            s.cash -= notional + fee_quote
            pos.qty += qty - (fee if fee_asset == r.base_asset else 0.0)
            pos.cost += notional + fee_quote + fee_other
            pos.entry_qty += qty
            pos.entry_notional += notional
            pos.entry_fills += 1
            pos.last_entry_price = price
            pos.fees_quote += fee_quote + fee_other + (fee * price if fee_asset == r.base_asset else 0.0)
            if pos.mark == 0.0:
                pos.mark = price
            return None
        # SELL: only what is held can be sold (spot, no shorting).
        if pos is None or qty - pos.qty > max(self.dust, 1e-9 * pos.qty):
            held = pos.qty if pos else 0.0
            raise ValueError(f"sell of {qty} {r.symbol} exceeds the held {held}")
        removed = qty + (fee if fee_asset == r.base_asset else 0.0)
        removed = min(removed, pos.qty)
        cost_removed = pos.cost * (removed / pos.qty) if pos.qty > 0 else 0.0
        proceeds = notional - fee_quote
        s.cash += proceeds
        pnl = proceeds - fee_other - cost_removed
        pos.realized += pnl
        s.realized_pnl += pnl
        pos.qty -= removed
        pos.cost -= cost_removed
        pos.exit_qty += qty
        pos.exit_notional += notional
        pos.exit_fills += 1
        pos.last_exit_price = price
        pos.fees_quote += fee_quote + fee_other + (fee * price if fee_asset == r.base_asset else 0.0)
        if pos.qty > self.dust:
            return None
        # Flat: the round trip is complete. Any dust left is written off into the trade's PnL.
        del s.positions[r.symbol]
        entry_price = pos.last_entry_price if pos.entry_fills == 1 else pos.entry_notional / pos.entry_qty
        exit_price = pos.last_exit_price if pos.exit_fills == 1 else pos.exit_notional / pos.exit_qty
        size = pos.entry_qty
        trade = ClosedTrade(symbol=r.symbol, entry_time=pos.entry_time, exit_time=r.event_time,
                            entry_price=entry_price, exit_price=exit_price, size=size, pnl=pos.realized,
                            return_pct=pos.realized / pos.entry_notional, commission=pos.fees_quote)
        s.consecutive_losses = s.consecutive_losses + 1 if trade.pnl < 0 else 0
        self.closed_trades.append(trade)
        window = self.trades_window
        if window is not None and len(self.closed_trades) > 2 * window:
            del self.closed_trades[:-window]
        return trade

    def set_balance(self, asset: str, amount: float, *, symbol: str | None = None, price: float = 0.0) -> None:
        """Make a balance what the venue says it is (reconciliation: the venue is the truth).

        The quote asset sets the cash; the base asset of a held position sets its quantity (its
        cost scaled with it); a base asset not held opens a position in `symbol` at `price` when
        both are given; anything else is a plain balance (such as BNB for fees).
        """
        self._snap = None
        s = self._s
        if asset == s.quote_asset:
            s.cash = amount
            return
        for pos in s.positions.values():
            if pos.base_asset == asset:
                if amount <= self.dust:
                    del s.positions[pos.symbol]
                else:
                    pos.cost = pos.cost * (amount / pos.qty) if pos.qty > 0 else amount * price
                    pos.qty = amount
                return
        if symbol is not None and amount > self.dust:
            base, quote = symbol[: -len(s.quote_asset)], s.quote_asset
            if symbol.endswith(quote) and base == asset:
                s.positions[symbol] = Position(symbol, base, quote, qty=amount, cost=amount * price, mark=price,
                                               entry_time=s.time, entry_qty=amount, entry_notional=amount * price)
                return
        if amount == 0.0:
            s.balances.pop(asset, None)
        else:
            s.balances[asset] = amount

    # -- persistence -------------------------------------------------------------------------
    def snapshot(self, *, seen: bool = True, trades: int | None = None) -> dict[str, Any]:
        """All state as a JSON-safe dict; `restore` of it gives an identical book. Without `seen`
        the seen-fill window is left out, and `trades` keeps only the latest closed round trips
        (a store saving the book on every fill keeps what it writes small)."""
        s = self._s
        # Fresh containers of immutable leaves (what asdict + deepcopy gave, at a tenth of the cost:
        # a store writes this on every fill).
        data: dict[str, Any] = {name: getattr(s, name) for name in _STATE_FIELDS}
        data["balances"] = dict(s.balances)
        data["asset_marks"] = dict(s.asset_marks)
        data["fees"] = dict(s.fees)
        data["positions"] = {k: {n: getattr(p, n) for n in _POSITION_FIELDS} for k, p in s.positions.items()}
        data["seen_fills"] = list(s.seen_fills) if seen else []
        kept = self.closed_trades if trades is None else self.closed_trades[len(self.closed_trades) - trades:]
        data["closed_trades"] = [t._asdict() for t in kept]
        data["dust"] = self.dust
        data["trades_window"] = self.trades_window
        return data

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> PositionBook:
        data = copy.deepcopy(snap)
        book = cls.__new__(cls)
        book.dust = data.pop("dust")
        book.trades_window = data.pop("trades_window", None)
        book.closed_trades = [ClosedTrade(**t) for t in data.pop("closed_trades")]
        data["positions"] = {k: Position(**v) for k, v in data["positions"].items()}
        book._s = _State(**data)
        book._seen = set(book._s.seen_fills)
        book._snap = None
        return book
