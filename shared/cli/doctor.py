"""`marketflow doctor`: can this machine trade on Binance with these keys? One table of checks.

Checks, in order, through the same REST client the executor uses (`shared.adapters.binance`):
reachability (`GET /api/v3/ping`), the server time offset (`GET /api/v3/time`; it must be under
1000 ms, the tolerance Binance allows for a timestamp ahead of its clock, or the local clock
needs fixing), the `exchangeInfo` filters of each symbol (listed, TRADING, the filters orders are
quantized to), that the key may trade spot (`GET /api/v3/account` canTrade) and the balances
of the symbols' assets. Exit 0 when every check passes, 1 otherwise, 2 on bad usage. Keys come
from the environment (`BINANCE_API_KEY` with `BINANCE_API_SECRET` or `BINANCE_PRIVATE_KEY_FILE`)
and are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from decimal import Decimal
from typing import Any, NamedTuple

from .errors import CliError

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
MAX_OFFSET_MS = 1000


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


def parse_symbols(text: str) -> list[str]:
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise CliError("--symbols needs at least one symbol, e.g. ETHUSDT,BTCUSDT")
    bad = [s for s in symbols if not SYMBOL_RE.match(s)]
    if bad:
        raise CliError(f"not a Binance symbol: {', '.join(bad)}")
    return list(dict.fromkeys(symbols))


def _fmt(d: Decimal) -> str:
    return f"{d.normalize():f}" if d else "0"


def _filters_detail(doc: dict[str, Any]) -> tuple[bool, str]:
    f = {x.get("filterType"): x for x in doc.get("filters", [])}
    missing = [n for n in ("PRICE_FILTER", "LOT_SIZE") if n not in f]
    if not ("NOTIONAL" in f or "MIN_NOTIONAL" in f):
        missing.append("NOTIONAL")
    status = doc.get("status", "?")
    if missing or status != "TRADING":
        why = f"status {status}" + (f", missing {', '.join(missing)}" if missing else "")
        return False, why
    notional = f.get("NOTIONAL") or f["MIN_NOTIONAL"]
    parts = [f"status {status}", f"tick {_fmt(Decimal(f['PRICE_FILTER']['tickSize']))}",
             f"step {_fmt(Decimal(f['LOT_SIZE']['stepSize']))}",
             f"minQty {_fmt(Decimal(f['LOT_SIZE']['minQty']))}",
             f"minNotional {_fmt(Decimal(notional['minNotional']))}"]
    if "MARKET_LOT_SIZE" in f and Decimal(f["MARKET_LOT_SIZE"]["maxQty"]) > 0:
        parts.append(f"market maxQty {_fmt(Decimal(f['MARKET_LOT_SIZE']['maxQty']))}")
    return True, ", ".join(parts)


async def run_checks(symbols: list[str], base_url: str, environ: Any = None) -> list[Check]:
    """Every check, in order; a check that cannot run (nothing reachable, no keys) fails with why."""
    from shared.adapters.binance.credentials import Credentials, CredentialsError
    from shared.adapters.binance.errors import BinanceError
    from shared.adapters.binance.rest import BinanceRest

    checks: list[Check] = []
    try:
        creds: Credentials | None = Credentials.from_env(environ)
        cred_error = ""
    except CredentialsError as exc:
        creds, cred_error = None, str(exc)
    rest = await BinanceRest.connect(creds, base_url=base_url, sync=False)
    try:
        t0 = time.perf_counter()
        try:
            await rest.ping()
        except BinanceError as exc:
            checks.append(Check("reachable", False, f"{base_url}: {exc}"))
            return checks + [Check(n, False, "skipped: not reachable") for n in
                             ("server time", *(f"filters {s}" for s in symbols), "account canTrade", "balances")]
        checks.append(Check("reachable", True, f"{base_url} ({(time.perf_counter() - t0) * 1000:.0f} ms)"))
        try:
            offset = await rest.sync_time()
            checks.append(Check("server time", abs(offset) < MAX_OFFSET_MS,
                                f"offset {offset:+d} ms" + ("" if abs(offset) < MAX_OFFSET_MS else
                                                            f" (over {MAX_OFFSET_MS} ms: fix this machine's clock)")))
        except BinanceError as exc:
            checks.append(Check("server time", False, str(exc)))
        assets: list[str] = []
        try:
            _, raw = await rest.exchange_info(symbols)
            docs = {s["symbol"]: s for s in raw.get("symbols", [])}
            for s in symbols:
                if s not in docs:
                    checks.append(Check(f"filters {s}", False, "not listed in exchangeInfo"))
                    continue
                ok, detail = _filters_detail(docs[s])
                checks.append(Check(f"filters {s}", ok, detail))
                assets += [docs[s].get("baseAsset", ""), docs[s].get("quoteAsset", "")]
        except (BinanceError, KeyError, ArithmeticError, TypeError) as exc:
            checks += [Check(f"filters {s}", False, f"exchangeInfo unreadable: {exc}") for s in symbols]
        if creds is None:
            return [*checks, Check("account canTrade", False, cred_error), Check("balances", False, cred_error)]
        try:
            acct = await rest.account()
        except BinanceError as exc:
            return [*checks, Check("account canTrade", False, str(exc)), Check("balances", False, "skipped")]
        checks.append(Check("account canTrade", acct.can_trade,
                            f"{acct.account_type}, canTrade={str(acct.can_trade).lower()}"))
        by_asset = {b.asset: b for b in acct.balances}
        shown = [a for a in dict.fromkeys(assets) if a] or sorted(by_asset)
        detail = "; ".join(f"{a} free {_fmt(by_asset[a].free)} locked {_fmt(by_asset[a].locked)}" if a in by_asset
                           else f"{a} 0" for a in shown)
        checks.append(Check("balances", True, detail or "none"))
        return checks
    finally:
        await rest.close()


def render(checks: list[Check]) -> str:
    w = max(len(c.name) for c in checks)
    lines = [f"{'check':<{w}}  result  detail", f"{'-' * w}  ------  {'-' * 40}"]
    lines += [f"{c.name:<{w}}  {'PASS' if c.ok else 'FAIL':<6}  {c.detail}" for c in checks]
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    from shared.adapters.binance.rest import resolve_base_url

    symbols = parse_symbols(args.symbols)
    try:
        base_url = resolve_base_url(args.base_url, testnet=args.testnet)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    checks = asyncio.run(run_checks(symbols, base_url))
    print(render(checks))
    failed = sum(not c.ok for c in checks)
    print(f"\ndoctor: {len(checks) - failed} of {len(checks)} checks pass", file=sys.stderr)
    return 0 if not failed else 1


def register(sub: Any) -> None:
    """Add `doctor` to the `marketflow` parser."""
    p = sub.add_parser("doctor", help="check Binance reachability, clock, filters, keys and balances",
                       description="Check that this machine can trade on Binance: reachability, server time "
                       "offset, exchangeInfo filters of each symbol, that the key can trade spot, and the "
                       "balances. Keys from BINANCE_API_KEY + BINANCE_API_SECRET (HMAC) or "
                       "BINANCE_API_KEY + BINANCE_PRIVATE_KEY_FILE (Ed25519). Exit 0 when every check "
                       "passes, 1 otherwise, 2 on bad usage.")
    p.add_argument("--symbols", required=True, help="comma-separated symbols, e.g. ETHUSDT,BTCUSDT")
    p.add_argument("--base-url", help="REST root (default: BINANCE_BASE_URL, else production)")
    p.add_argument("--testnet", action="store_true", help="use the Spot testnet (https://testnet.binance.vision)")
    p.set_defaults(func=cmd_doctor)
