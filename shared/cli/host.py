"""`marketflow host`: run the Function App's Event Hub and HTTP triggers locally, without Core Tools."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .errors import CliError


def cmd_host(args: argparse.Namespace) -> int:
    from devhost.bindings import index, load_app
    from devhost.host import FunctionsHost, HostError, load_local_settings
    from devhost.hostjson import read_host_json

    app_dir = Path(args.app_dir)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        settings = Path(args.settings) if args.settings else app_dir / "local.settings.json"
        if args.settings or settings.exists():
            load_local_settings(settings)
        options = read_host_json(Path(args.host_json) if args.host_json else app_dir / "host.json")
        found = index(load_app(args.module, app_dir))
        triggers, http = found.event_hub, found.http
    except (HostError, ValueError, ImportError) as exc:
        raise CliError(str(exc)) from None
    if args.functions:
        wanted = {f.strip() for f in args.functions.split(",") if f.strip()}
        unknown = wanted - {t.function for t in triggers} - {h.function for h in http}
        if unknown:
            raise CliError(f"--functions: no Event Hub trigger named {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(t.function for t in triggers)})")
        triggers = [t for t in triggers if t.function in wanted]
        http = [h for h in http if h.function in wanted]

    def report(function: str, partition: str, n: int, outcome: Any) -> None:
        state = "ok" if outcome.error is None else f"failed after {outcome.attempts} attempt(s)"
        print(f"{function} partition {partition}: {n} event(s), {state}", file=sys.stderr)

    host = FunctionsHost(triggers, options, on_batch=report if args.verbose else None, http=http,
                         http_host=args.http_host, http_port=args.port)
    for t in triggers:
        print(f"host: {t.function} <- hub {t.hub} (group {t.consumer_group}, {'many' if t.many else 'one'}, "
              f"retry {t.retry.strategy if t.retry else 'none'})", file=sys.stderr)
    for h in http:
        print(f"host: {h.function} <- http {','.join(h.methods) or '*'} http://{args.http_host}:{args.port}/api/"
              f"{h.route} (auth {h.auth_level.lower()}, not enforced locally)", file=sys.stderr)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, host.stop)
        await host.run()

    try:
        asyncio.run(main())
    except HostError as exc:
        raise CliError(str(exc)) from None
    totals = ", ".join(f"{name}: {s.batches} batches, {s.events} events, {s.failures} failed, "
                       f"{s.checkpoints} checkpoints" for name, s in host.stats.items())
    print(f"host stopped: {totals}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Add `marketflow host`."""
    p = sub.add_parser("host", help="run the Function App's Event Hub triggers locally (no Core Tools)",
                       description="Consume each Event Hub trigger of the Function App with the azure-eventhub SDK "
                       "and a Blob checkpoint store (AzureWebJobsStorage), call the real registered functions with "
                       "azure.functions.EventHubEvent batches, apply each function's retry policy and checkpoint "
                       "after each batch, as the Functions host does. Settings come from the environment and "
                       "local.settings.json (the environment wins).")
    p.add_argument("--app-dir", default=".", help="folder of function_app.py and host.json (default: .)")
    p.add_argument("--module", default="function_app", help="module holding `app` (default %(default)s)")
    p.add_argument("--settings", help="local.settings.json to load (default: <app-dir>/local.settings.json if any)")
    p.add_argument("--host-json", help="host.json (default: <app-dir>/host.json)")
    p.add_argument("--functions", help="comma-separated function names to run (default: every Event Hub trigger)")
    p.add_argument("--port", type=int, default=7071, help="port of the HTTP functions (default %(default)s)")
    p.add_argument("--http-host", default="127.0.0.1", help="address of the HTTP functions (default %(default)s)")
    p.add_argument("--verbose", action="store_true", help="print a line per batch")
    p.add_argument("--log-level", default="WARNING", help="log level (default %(default)s)")
    p.set_defaults(func=cmd_host)
