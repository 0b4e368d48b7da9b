"""`marketflow order`: one manual order through the executor's own path.

The same pieces the service runs: the risk engine's last look (with the exchange's filters, so the
quantity is quantized toward safety), the durable intent store (SQLite under `--state-dir`) and
the venue (the paper venue by default; Binance with `--venue binance`, `--base-url` or
`--testnet`, keys from `BINANCE_API_KEY` + `BINANCE_API_SECRET` / `BINANCE_PRIVATE_KEY_FILE` or
Key Vault). The intent id is the idempotency key: run again with the same `--intent-id` and
`--state-dir`, nothing is sent and the same final report is printed.

Output: the order's final `ExecutionReport` as one JSON line on stdout; exit 0 when it reached a
final state, 1 when it is still working (a LIMIT that rests) or unknown, 2 when the filters, the
limits or the venue refused it (one clear line on stderr, nothing sent) or on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import CliError

DEFAULT_STATE_DIR = ".marketflow"
MANUAL_STRATEGY = "manual"


def _decimal(text: str) -> str:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not d.is_finite() or d <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return text


def register(sub: Any) -> None:
    p = sub.add_parser("order", help="place one manual order through the executor (last look, intent store, venue)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
    p.add_argument("--side", required=True, type=str.upper, choices=("BUY", "SELL"))
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--quantity", type=_decimal, help="base quantity (rounded down to the lot step)")
    size.add_argument("--quote-quantity", type=_decimal, help="quote amount to spend (MARKET only)")
    p.add_argument("--type", dest="order_type", type=str.upper, choices=("MARKET", "LIMIT"), default="MARKET")
    p.add_argument("--price", type=_decimal,
                   help="LIMIT: the limit price. MARKET: the reference price the last look sizes and checks "
                        "with (required on the paper venue, which has no market of its own: it fills there)")
    p.add_argument("--intent-id", help="idempotency key (default: a new one); re-use it to re-run safely")
    p.add_argument("--venue", choices=("paper", "binance"), default=None,
                   help="default: binance with --base-url/--testnet/BINANCE_BASE_URL, else MARKETFLOW_VENUE or paper")
    p.add_argument("--base-url", help="Binance REST root (default BINANCE_BASE_URL, else production)")
    p.add_argument("--testnet", action="store_true", help="the Binance Spot testnet")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"the intent store's directory (default MARKETFLOW_STATE_DIR or {DEFAULT_STATE_DIR})")
    p.add_argument("--cash", type=float, default=10_000.0, help="paper venue: starting quote balance")
    p.add_argument("--commission", type=float, default=0.001, help="paper venue: fee rate")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for a final state (default 10)")
    p.add_argument("--risk", action="append", default=[], metavar="KEY=VALUE",
                   help="a risk limit for this order's last look (as MARKETFLOW_RISK_<KEY>), repeatable")
    p.set_defaults(func=_order)


def _venue_kind(args: argparse.Namespace) -> str:
    if args.venue is not None:
        return str(args.venue)
    if args.base_url or args.testnet or os.environ.get("BINANCE_BASE_URL"):
        return "binance"
    kind = os.environ.get("MARKETFLOW_VENUE", "paper").strip().lower() or "paper"
    if kind not in ("paper", "binance"):
        raise CliError(f"MARKETFLOW_VENUE must be paper or binance, got {kind!r}")
    return kind


def _check(args: argparse.Namespace, venue: str) -> None:
    if args.order_type == "LIMIT":
        if args.price is None:
            raise CliError("a LIMIT order needs --price")
        if args.quantity is None:
            raise CliError("a LIMIT order needs --quantity (--quote-quantity is for MARKET orders)")
    if venue == "paper" and args.price is None:
        raise CliError("the paper venue needs --price (it fills at that price; it has no market data)")
    if venue == "paper" and (args.base_url or args.testnet):
        raise CliError("--base-url and --testnet are for the binance venue")
    if args.intent_id is not None and not (1 <= len(args.intent_id) <= 64 and args.intent_id.replace("-", "")
                                           .replace("_", "").isalnum()):
        raise CliError("--intent-id must be 1-64 letters, digits, '-' or '_'")


def _order(args: argparse.Namespace) -> int:
    venue = _venue_kind(args)
    _check(args, venue)
    state_dir = args.state_dir or Path(os.environ.get("MARKETFLOW_STATE_DIR", "") or DEFAULT_STATE_DIR)
    try:
        status, line = asyncio.run(_place(args, venue, state_dir))
    except CliError:
        raise
    except Exception as exc:  # a venue or store failure: one line, never a traceback with a key in it
        raise CliError(f"{type(exc).__name__}: {exc}") from None
    print(line, flush=True)
    return status


def intent_event_id(intent_id: str) -> str:
    """The stored intent's id for an operator's `--intent-id` (the same one on every run)."""
    from shared.events import deterministic_id

    return deterministic_id("manual_intent", intent_id)


def _intent(args: argparse.Namespace, intent_id: str, now: int, price: float) -> Any:
    from pydantic import ValidationError

    from shared.events import OrderIntent, OrderType, Side

    event_id = intent_event_id(intent_id)
    try:
        return OrderIntent(
            event_id=event_id, correlation_id=event_id, event_time=now, symbol=args.symbol.upper(),
            strategy=MANUAL_STRATEGY, side=Side(args.side), order_type=OrderType(args.order_type),
            quantity=float(args.quantity) if args.quantity is not None else None,
            quote_quantity=float(args.quote_quantity) if args.quote_quantity is not None else None,
            limit_price=float(args.price) if args.order_type == "LIMIT" else None,
            reference_price=price, signal_id=f"manual-{intent_id}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "order"
        raise CliError(f"bad order: {where}: {first['msg']}") from None


class _LateRisk:
    """Exchange errors from the venue's first calls (before the engine exists) go to the engine
    once it does; `risk_hook` reports each one to it (a ban halts trading)."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.early: list[tuple[Any, ...]] = []

    def report_exchange_error(self, *args: Any) -> bool:
        if self.engine is None:
            self.early.append(args)
            return False
        return bool(self.engine.report_exchange_error(*args))


async def _open_venue(args: argparse.Namespace, kind: str, book: Any, risk: _LateRisk) -> Any:
    if kind == "paper":
        from shared.execution import PaperVenue
        from shared.execution.paper import balances_of

        return PaperVenue(commission=args.commission, balances=balances_of(book))
    from aks_executor.secrets import binance_credentials
    from shared.adapters.azure.keyvault import SecretResolver
    from shared.adapters.azure.settings import ConfigurationError
    from shared.adapters.binance.venue import BinanceVenue, risk_hook

    try:
        credentials = binance_credentials(SecretResolver(), os.environ)
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    try:
        return await BinanceVenue.connect(base_url=args.base_url, testnet=args.testnet, credentials=credentials,
                                          symbols=[args.symbol.upper()], on_error=risk_hook(risk))
    except ValueError as exc:
        raise CliError(str(exc)) from None


async def _filters(kind: str, venue: Any, config: Any) -> Any:
    """The exchange's filters: the venue's live exchangeInfo on Binance; on paper the file the
    risk config names, else the bundled sample (BTCUSDT, ETHUSDT), for the symbols it has."""
    from shared.risk.filters import ExchangeFilters

    if kind == "binance":
        return await venue.exchange_info.filters()
    if config.exchange_info_file is not None:
        return ExchangeFilters.from_file(config.exchange_info_file)
    try:
        return ExchangeFilters.bundled()
    except OSError:  # an install without the sample data (the image): no filters to apply
        return None


async def _place(args: argparse.Namespace, kind: str, state_dir: Path) -> tuple[int, str]:
    from shared.adapters.local.intent_store import SqliteIntentStore
    from shared.execution import Executor, restore_book
    from shared.portfolio import PositionBook
    from shared.risk import RiskConfig, RiskEngine
    from shared.risk.config import RiskConfigError

    symbol = args.symbol.upper()
    intent_id = args.intent_id or f"manual-{uuid.uuid4().hex}"
    try:
        config = RiskConfig.load().with_overrides(args.risk)
    except RiskConfigError as exc:
        raise CliError(str(exc)) from None
    state_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteIntentStore(state_dir)
    venue: Any = None
    try:
        record = await store.get(intent_event_id(intent_id))
        if record is not None and record.state.is_final:
            return _finished(record, kind)  # a re-run: nothing is sent
        book = await restore_book(store, lambda: PositionBook(cash=args.cash))
        risk = _LateRisk()
        venue = await _open_venue(args, kind, book, risk)
        now = int(time.time() * 1000)
        engine = RiskEngine(config, filters=await _filters(kind, venue, config), now=now)
        risk.engine = engine
        for early in risk.early:
            engine.report_exchange_error(*early)
        price = float(args.price) if args.price is not None else None
        if price is None:
            raise CliError("give --price: the reference price the last look sizes and checks this order with")
        engine.on_market(symbol, price, now)
        executor = Executor(venue, engine, book, store)
        if kind == "binance" or record is not None:
            # As the service starts: orders stored as sent are asked about (never resent) and the
            # book takes the account's balances, the venue's truth.
            await executor.reconcile(now, symbols=(symbol,))
        if record is None:
            await executor.on_intent(_intent(args, intent_id, now, price), now)
            if kind == "paper":
                for update in venue.on_price(symbol, price, now):
                    await executor.on_order_update(update, now)
        await _wait_final(executor, venue, store, intent_event_id(intent_id), args.wait)
        record = await store.get(intent_event_id(intent_id))
        assert record is not None
        return _finished(record, kind)
    finally:
        if venue is not None and hasattr(venue, "close"):
            await venue.close()
        await store.close()


async def _wait_final(executor: Any, venue: Any, store: Any, intent_id: str, wait_s: float) -> None:
    """A LIMIT order may rest: ask the venue until it is final or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        record = await store.get(intent_id)
        if record is None or record.state.is_final or record.request is None or time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.5)
        order = await venue.query_order(record.symbol, record.client_order_id)
        await executor.on_order_update(order, int(time.time() * 1000))


def _finished(record: Any, kind: str) -> tuple[int, str]:
    """The stored order as one JSON line, and the exit status (a last-look or venue refusal is
    exit 2 with one line on stderr)."""
    from shared.events import ExecutionReport, OrderStatus, encode
    from shared.execution.orders import OrderState
    from shared.symbols import split_symbol

    state = record.state
    if state is OrderState.REJECTED and record.request is None:
        raise CliError(f"order refused, nothing sent: {record.reject_reason or 'rejected by the last look'}")
    if state is OrderState.REJECTED and record.venue_order_id is None:
        raise CliError(f"order refused by {kind}: {record.reject_reason or 'rejected'}")
    status = {OrderState.FILLED: OrderStatus.FILLED, OrderState.CANCELED: OrderStatus.CANCELED,
              OrderState.REJECTED: OrderStatus.REJECTED, OrderState.EXPIRED: OrderStatus.EXPIRED,
              OrderState.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED}.get(state, OrderStatus.NEW)
    base, quote = split_symbol(record.symbol)
    when = record.transitions[-1].time if record.transitions else record.intent.event_time
    report = ExecutionReport.create(intent=record.intent, status=status, venue=kind,  # type: ignore[arg-type]
                                    order_id=record.venue_order_id or 0, base_asset=base, quote_asset=quote,
                                    fills=tuple(record.fills), event_time=when,
                                    reject_reason=record.reject_reason if status is OrderStatus.REJECTED else "")
    line = encode(report).decode("utf-8")
    if not state.is_final:
        print(f"marketflow: order {record.client_order_id} is {state.value}, not final yet; run again with "
              "the same --intent-id and --state-dir to check on it", file=sys.stderr)
        return 1, line
    return 0, line
