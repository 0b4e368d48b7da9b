"""`marketflow ingest`: Binance market streams into the `market-data` hub or Binance Vision files.

The same ingestor `python -m aks_ingestor` runs (aks_ingestor/), with its settings from options.
It runs until SIGTERM or SIGINT (Ctrl-C), then writes what it holds and prints one line of totals.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .errors import CliError

if TYPE_CHECKING:
    from aks_ingestor.settings import IngestSettings


def register(sub: argparse._SubParsersAction) -> None:
    from aks_ingestor.settings import (
        DEFAULT_BATCH_WINDOW_MS,
        DEFAULT_MAX_BATCH,
        DEFAULT_MAX_PENDING,
        DEFAULT_STALE_TIMEOUT_S,
    )
    from shared.adapters.binance.streams import DEFAULT_REST_URL, DEFAULT_STREAM_URL

    p = sub.add_parser("ingest", help="stream Binance klines/trades/book tickers to market-data or to files",
                       description="Subscribe to Binance kline (closed bars only), trade and book-ticker streams; "
                       "detect gaps and backfill them over REST; publish to the market-data hub (partition key = "
                       "symbol) or write Binance Vision daily files. Stops on SIGTERM/SIGINT, printing totals.")
    p.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--interval", default="1m", help="kline interval(s), comma-separated, e.g. 1m,5m (default 1m)")
    p.add_argument("--trades", action="store_true", help="also the trade streams")
    p.add_argument("--book-ticker", action="store_true", help="also the book-ticker streams")
    p.add_argument("--sink", default="eventhub", help="eventhub (setting EVENTHUB) or dir:PATH (default eventhub)")
    p.add_argument("--stream-url", default=DEFAULT_STREAM_URL, help=f"stream base URL (default {DEFAULT_STREAM_URL})")
    p.add_argument("--rest-url", default=DEFAULT_REST_URL, help=f"REST base URL for backfill (default "
                   f"{DEFAULT_REST_URL}); 'none' disables backfill")
    p.add_argument("--stale-timeout", type=float, default=DEFAULT_STALE_TIMEOUT_S,
                   help=f"seconds a connection may stay silent before it is reconnected, at most 60 "
                   f"(default {DEFAULT_STALE_TIMEOUT_S:g})")
    p.add_argument("--deadletter", default=None, help="where malformed messages are kept: dir:PATH or blob "
                   "(default dir:<sink>/deadletter with a dir sink, blob with eventhub)")
    p.add_argument("--batch-window-ms", type=float, default=DEFAULT_BATCH_WINDOW_MS,
                   help=f"longest wait for a batch to fill (default {DEFAULT_BATCH_WINDOW_MS:g} ms)")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help=f"default {DEFAULT_MAX_BATCH}")
    p.add_argument("--max-pending", type=int, default=DEFAULT_MAX_PENDING,
                   help=f"records held before the streams wait for the sink (default {DEFAULT_MAX_PENDING})")
    p.add_argument("--http-port", type=int, default=None, help="serve /healthz, /readyz, /metrics on this port")
    p.set_defaults(func=cmd_ingest)


def settings_from_args(args: argparse.Namespace) -> IngestSettings:
    from aks_ingestor.settings import IngestSettings, SettingsError, Target, split_list

    try:
        return IngestSettings(
            symbols=split_list(args.symbols), intervals=split_list(args.interval), trades=args.trades,
            book_ticker=args.book_ticker, sink=Target.parse(args.sink, "--sink", ("eventhub",)),
            stream_url=args.stream_url, rest_url=None if args.rest_url.lower() == "none" else args.rest_url,
            stale_timeout=args.stale_timeout,
            deadletter=Target.parse(args.deadletter, "--deadletter", ("blob",)) if args.deadletter else None,
            batch_window_ms=args.batch_window_ms, max_batch=args.max_batch, max_pending=args.max_pending,
            http_port=args.http_port)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def cmd_ingest(args: argparse.Namespace) -> int:
    import logging

    from aks_ingestor.main import run
    from aks_ingestor.settings import SettingsError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(args)
    try:
        return run(settings)
    except SettingsError as exc:
        raise CliError(str(exc)) from None
