"""Paper broker: fills market orders at the next price the market shows, as Binance would report.

In a bar replay the next price is the next bar's open; on trade data it is the next trade's price.
Commission is charged on both sides. Fees are reported per fill with their asset, as Binance's
`fills` array does: with `fee_mode="quote"` both legs pay in the quote asset (as backtesting.py
and a BNB-style separate fee balance do); with `fee_mode="received"` a buy pays in the bought base
asset and a sell in the quote asset (Binance's default without BNB).
"""

from __future__ import annotations

import math
from typing import Literal

from shared.events import ExecutionReport, Fill, OrderIntent, OrderStatus, Side
from shared.events.base import trusted
from shared.market import Bar
from shared.symbols import split_symbol

FeeMode = Literal["quote", "received"]
# float64 safety margin backtesting.py also applies before flooring a size.
_SAFE = 1.0 - 2.0**-52


class PaperBroker:
    """Holds accepted market orders until the next price for their symbol, then fills them whole."""

    def __init__(self, commission: float = 0.001, fee_mode: FeeMode = "quote", step: float = 1e-8) -> None:
        if not 0 <= commission < 1:
            raise ValueError("commission must be in [0, 1)")
        self.commission = commission
        self.fee_mode: FeeMode = fee_mode
        self.step = step
        self.pending: list[tuple[OrderIntent, int]] = []  # (order, its venue order id), in arrival order
        self._order_seq = 0
        self._trade_seq = 0

    def submit(self, intent: OrderIntent, now: int) -> None:
        """Accept a market order; it fills at the next price, and that fill is its one report (as
        Binance's FULL response to a market order is one FILLED report, not an ack and a fill)."""
        self._order_seq += 1
        self.pending.append((intent, self._order_seq))

    def on_bar(self, bar: Bar) -> list[ExecutionReport]:
        """Fill the pending orders of the bar's symbol at its open."""
        return self.on_price(bar.symbol, bar.open, bar.open_time)

    def on_price(self, symbol: str, price: float, time: int) -> list[ExecutionReport]:
        reports: list[ExecutionReport] = []
        keep: list[tuple[OrderIntent, int]] = []
        for order in self.pending:
            intent, order_id = order
            if intent.symbol != symbol:
                keep.append(order)
                continue
            reports.append(self._fill(intent, order_id, price, time))
        self.pending = keep
        return reports

    def _fill(self, intent: OrderIntent, order_id: int, price: float, time: int) -> ExecutionReport:
        base, quote = split_symbol(intent.symbol)
        c = self.commission
        if intent.side is Side.BUY:
            if intent.quote_quantity is not None:
                # Spend at most the budget, fees included when they are paid in the quote asset.
                per_unit = price * (1 + c) if self.fee_mode == "quote" else price
                qty = self._floor(intent.quote_quantity * _SAFE / per_unit)
            else:
                qty = intent.quantity or 0.0
            fee_asset = quote if self.fee_mode == "quote" else base
            fee = qty * price * c if self.fee_mode == "quote" else qty * c
        else:
            qty = intent.quantity or 0.0
            fee_asset = quote
            fee = qty * price * c
        if qty <= 0:
            return ExecutionReport.create(intent=intent, status=OrderStatus.REJECTED, venue="paper",
                                          order_id=order_id, base_asset=base, quote_asset=quote,
                                          fills=(), event_time=time,
                                          reject_reason="quantity rounds to zero at the fill price")
        self._trade_seq += 1
        # From a validated intent, a positive price and a positive quantity: see `trusted`.
        fill = trusted(Fill, {"price": price, "quantity": qty, "commission": fee, "commission_asset": fee_asset,
                              "trade_id": self._trade_seq})
        return ExecutionReport.create(intent=intent, status=OrderStatus.FILLED, venue="paper",
                                      order_id=order_id, base_asset=base, quote_asset=quote,
                                      fills=(fill,), event_time=time)

    def _floor(self, qty: float) -> float:
        units = math.floor(qty / self.step)
        return round(units * self.step, 12)
