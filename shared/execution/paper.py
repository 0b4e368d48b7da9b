"""The paper venue: the `Venue` protocol in process, filling orders at the next price the market shows.

In a bar replay the next price is the next bar's open; on trade data it is the next trade's price.
A MARKET order is accepted (NEW) and fills whole at the next price of its symbol; a LIMIT order
rests until a price reaches its limit and fills whole there at that price (or better). Fills come
out of `on_price` / `on_bar` as order updates, which the executor applies like any venue's.

Commission is charged on both sides. Fees are reported per fill with their asset, as Binance's
`fills` array does: with `fee_mode="quote"` both legs pay in the quote asset (as backtesting.py
and a BNB-style separate fee balance do); with `fee_mode="received"` a buy pays in the bought base
asset and a sell in the quote asset (Binance's default without BNB).

It keeps balances (free only: nothing is locked while an order rests) and answers queries as
Binance does: a client order id is unique among open orders only; finished orders and trades are
kept in bounded windows (`ORDER_HISTORY`, `TRADE_HISTORY`), older ones are forgotten.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from shared.events import OrderType, Side
from shared.events.base import trusted
from shared.market import Bar
from shared.portfolio import PositionBook
from shared.symbols import split_symbol

from .venue import (
    Balance,
    OrderNotFound,
    OrderRequest,
    VenueFill,
    VenueOrder,
    VenueOrderStatus,
    VenueRejected,
    VenueTrade,
)

FeeMode = Literal["quote", "received"]
ORDER_HISTORY = 10_000   # finished orders a query still finds
TRADE_HISTORY = 10_000   # trades `recent_trades` still returns
# float64 safety margin backtesting.py also applies before flooring a size.
_SAFE = 1.0 - 2.0**-52
_TOLERANCE = 1e-9        # relative slack of the balance check (the book's own float sums)
_ZERO = Decimal(0)


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


def balances_of(book: PositionBook) -> dict[str, float]:
    """A paper account holding what a book holds: the paper venue keeps nothing across restarts,
    so a restarted service starts it from its restored book."""
    out = {book.quote_asset: book.cash}
    snap = book.snapshot()
    for pos in snap["positions"].values():
        out[pos["base_asset"]] = pos["qty"]
    out.update(snap["balances"])
    return out


@dataclass(slots=True)
class _Working:
    request: OrderRequest
    order_id: int
    time: int
    base: str
    quote: str
    limit: float | None


class PaperVenue:
    """An in-process venue for one account. The async calls never wait on anything."""

    name = "paper"

    def __init__(self, commission: float = 0.001, fee_mode: FeeMode = "quote", step: float = 1e-8,
                 balances: dict[str, float] | None = None, *, check_balances: bool = True) -> None:
        if not 0 <= commission < 1:
            raise ValueError("commission must be in [0, 1)")
        self.commission = commission
        self.fee_mode: FeeMode = fee_mode
        self.step = step
        self.check_balances = check_balances and balances is not None
        self.pending: dict[str, _Working] = {}  # client order id -> open order, in arrival order
        self._done: OrderedDict[str, VenueOrder] = OrderedDict()
        # (symbol, trade id, order id, price, qty, quote qty, fee, fee asset, time, is buyer): the
        # model is built only when asked for (`recent_trades`), off the fill path.
        self._trades: deque[tuple[str, int, int, float, float, float, float, str, int, bool]] = deque(
            maxlen=TRADE_HISTORY)
        self._balances: dict[str, float] = dict(balances or {})
        self._order_seq = 0
        self._trade_seq = 0
        self._time = 0
        self.submitted = 0  # orders accepted: what a test counts to prove nothing was sent twice

    # -- the protocol ------------------------------------------------------------------------
    async def submit(self, order: OrderRequest) -> VenueOrder:
        coid = order.client_order_id
        if coid in self.pending:
            raise VenueRejected(-2010, "Duplicate order sent.")
        limit: float | None = None
        if order.order_type is OrderType.LIMIT:
            if order.price is None or order.quantity is None:
                raise VenueRejected(-1102, "A LIMIT order needs quantity and price.")
            limit = float(order.price)
        elif (order.quantity is None) == (order.quote_quantity is None):
            raise VenueRejected(-1102, "A MARKET order needs exactly one of quantity and quoteOrderQty.")
        base, quote = split_symbol(order.symbol)
        if self.check_balances:
            self._check_balance(order, base, quote, limit)
        self._order_seq += 1
        self.submitted += 1
        self.pending[coid] = _Working(order, self._order_seq, self._time, base, quote, limit)
        return self._order(order, self._order_seq, VenueOrderStatus.NEW, self._time, ())

    async def cancel(self, symbol: str, client_order_id: str) -> VenueOrder:
        working = self.pending.get(client_order_id)
        if working is None or working.request.symbol != symbol:
            raise VenueRejected(-2011, "Unknown order sent.")
        del self.pending[client_order_id]
        done = self._order(working.request, working.order_id, VenueOrderStatus.CANCELED, self._time, ())
        self._finish(done)
        return done

    async def query_order(self, symbol: str, client_order_id: str) -> VenueOrder:
        working = self.pending.get(client_order_id)
        if working is not None and working.request.symbol == symbol:
            return self._order(working.request, working.order_id, VenueOrderStatus.NEW, working.time, ())
        done = self._done.get(client_order_id)
        if done is None or done.symbol != symbol:
            raise OrderNotFound()
        # As a query reports it: quantities, no fills (they are in the trades).
        return trusted(VenueOrder, {**done.__dict__, "fills": ()}) if done.fills else done

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return [self._order(w.request, w.order_id, VenueOrderStatus.NEW, w.time, ())
                for w in self.pending.values() if symbol is None or w.request.symbol == symbol]

    async def balances(self) -> list[Balance]:
        return [Balance(asset=a, free=_dec(max(v, 0.0)), locked=_ZERO) for a, v in sorted(self._balances.items())]

    async def recent_trades(self, symbol: str, *, since_ms: int | None = None, order_id: int | None = None,
                            limit: int = 500) -> list[VenueTrade]:
        out = [t for t in self._trades if t[0] == symbol and (order_id is None or t[2] == order_id)
               and (since_ms is None or t[8] >= since_ms)]
        return [VenueTrade(symbol=t[0], trade_id=t[1], order_id=t[2], price=_dec(t[3]), qty=_dec(t[4]),
                           quote_qty=_dec(t[5]), commission=_dec(t[6]), commission_asset=t[7], time=t[8],
                           is_buyer=t[9]) for t in out[-limit:]]

    # -- the market --------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> list[VenueOrder]:
        """Fill the working orders of the bar's symbol at its open."""
        return self.on_price(bar.symbol, bar.open, bar.open_time)

    def on_price(self, symbol: str, price: float, time: int) -> list[VenueOrder]:
        """The next price of a symbol: the orders it fills (or expires), as the venue reports them."""
        if time > self._time:
            self._time = time
        updates: list[VenueOrder] = []
        for coid, w in list(self.pending.items()):
            if w.request.symbol != symbol:
                continue
            if w.limit is not None:
                buy = w.request.side is Side.BUY
                if (buy and price > w.limit) or (not buy and price < w.limit):
                    continue
            del self.pending[coid]
            done = self._fill(w, price, time)
            self._finish(done)
            updates.append(done)
        return updates

    # -- internals ---------------------------------------------------------------------------
    def _fill(self, w: _Working, price: float, time: int) -> VenueOrder:
        req = w.request
        c = self.commission
        quote_mode = self.fee_mode == "quote"
        if req.side is Side.BUY:
            if req.quote_quantity is not None:
                # Spend at most the budget, fees included when they are paid in the quote asset.
                per_unit = price * (1 + c) if quote_mode else price
                qty = self._floor(float(req.quote_quantity) * _SAFE / per_unit)
            else:
                qty = float(req.quantity or 0)
            fee_asset = w.quote if quote_mode else w.base
            fee = qty * price * c if quote_mode else qty * c
        else:
            qty = float(req.quantity or 0)
            fee_asset = w.quote
            fee = qty * price * c
        if qty <= 0:
            # Binance expires a market order it cannot fill; nothing traded.
            return self._order(req, w.order_id, VenueOrderStatus.EXPIRED, time, ())
        self._trade_seq += 1
        notional = qty * price
        bal = self._balances
        if req.side is Side.BUY:
            bal[w.quote] = bal.get(w.quote, 0.0) - notional - (fee if fee_asset == w.quote else 0.0)
            bal[w.base] = bal.get(w.base, 0.0) + qty - (fee if fee_asset == w.base else 0.0)
        else:
            bal[w.base] = bal.get(w.base, 0.0) - qty
            bal[w.quote] = bal.get(w.quote, 0.0) + notional - fee
        q = _dec(qty)
        # This venue's own numbers, in declaration order: see `trusted`.
        fill = trusted(VenueFill, {"price": _dec(price), "qty": q, "commission": _dec(fee),
                                   "commission_asset": fee_asset, "trade_id": self._trade_seq})
        self._trades.append((req.symbol, self._trade_seq, w.order_id, price, qty, notional, fee, fee_asset, time,
                             req.side is Side.BUY))
        return self._order(req, w.order_id, VenueOrderStatus.FILLED, time, (fill,), executed=q,
                           quote=_dec(notional))

    def _order(self, req: OrderRequest, order_id: int, status: VenueOrderStatus, time: int,
               fills: tuple[VenueFill, ...], executed: Decimal = _ZERO, quote: Decimal = _ZERO) -> VenueOrder:
        # From a validated request and this venue's own numbers, every field in order: see `trusted`.
        return trusted(VenueOrder, {
            "symbol": req.symbol, "order_id": order_id, "client_order_id": req.client_order_id, "side": req.side,
            "order_type": req.order_type.value, "status": status, "orig_qty": req.quantity or _ZERO,
            "executed_qty": executed, "cumulative_quote_qty": quote, "price": req.price or _ZERO,
            "time_in_force": req.time_in_force.value if req.time_in_force else None, "time": time,
            "update_time": time, "fills": fills})

    def _finish(self, order: VenueOrder) -> None:
        done = self._done
        done[order.client_order_id] = order
        done.move_to_end(order.client_order_id)
        if len(done) > ORDER_HISTORY:
            done.popitem(last=False)

    def _check_balance(self, order: OrderRequest, base: str, quote: str, limit: float | None) -> None:
        if order.side is Side.BUY:
            need, asset = (float(order.quote_quantity) if order.quote_quantity is not None
                           else float(order.quantity or 0) * (limit or 0.0)), quote
        else:
            need, asset = float(order.quantity or 0), base
        free = self._balances.get(asset, 0.0)
        if need > free * (1 + _TOLERANCE) + 1e-12:
            raise VenueRejected(-2010, "Account has insufficient balance for requested action.")

    def _floor(self, qty: float) -> float:
        units = math.floor(qty / self.step)
        return round(units * self.step, 12)
