"""Deploy smoke test of a Function App slot (deploy-functions.yml).

`--namespace NS` sends one synthetic closed kline (symbol SMOKETEST, the current minute) to hub
`market-data` of that Event Hubs namespace with the caller's Entra identity, through the same
publisher the Functions use: it proves the namespace, the hub and the publish path. The workflow
passes the STAGING namespace only, so nothing reaches production. `--health URL` then GETs the
slot's `health` endpoint and fails unless it answers 200 within the retries (a fresh slot may
take a minute to start).

`--connection-setting NAME` instead sends through the Event Hubs connection string in environment
variable NAME (never printed): for a local run against the repo's emulator (`marketflow
emulator`); tests/test_smoke_functions.py runs this script that way against the emulator and the
real `health` function served on loopback.

The workflows run it as `python scripts/smoke_functions.py` after `pip install -r requirements.txt -c constraints.txt`
(the project itself is not installed), so it puts the repository root on sys.path itself.

Exit status 0 when every requested check passed, 1 otherwise, with one line saying which.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SMOKE_SYMBOL = "SMOKETEST"


def send_kline(settings: Mapping[str, str], where: str) -> None:
    """One synthetic closed kline to hub market-data, through the Functions' own publisher."""
    from shared import topology
    from shared.adapters.azure import EventHubPublisher
    from shared.events import Kline

    minute = int(time.time() // 60) * 60_000
    kline = Kline.create(symbol=SMOKE_SYMBOL, interval="1m", open_time=minute, close_time=minute + 59_999,
                         open=1.0, high=1.0, low=1.0, close=1.0, volume=0.0)
    publisher = EventHubPublisher.from_settings(environ=settings)
    try:
        publisher.publish(topology.MARKET_DATA.name, [kline])
    finally:
        publisher.close()
    print(f"smoke: sent kline {kline.event_id} to {topology.MARKET_DATA.name} on {where}")


def check_health(url: str, attempts: int, delay_s: float) -> None:
    last = "no answer"
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    print(f"smoke: {url} answered 200")
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(delay_s)
    raise RuntimeError(f"{url} did not answer 200 after {attempts} attempts (last: {last})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--namespace", help="Event Hubs namespace FQDN to send the synthetic kline to (identity)")
    target.add_argument("--connection-setting", metavar="NAME",
                        help="environment variable holding an Event Hubs connection string (local, emulator)")
    parser.add_argument("--health", help="URL of the slot's health endpoint")
    parser.add_argument("--attempts", type=int, default=12)
    parser.add_argument("--delay", type=float, default=10.0)
    args = parser.parse_args(argv)
    if not (args.namespace or args.connection_setting) and not args.health:
        parser.error("give --namespace (or --connection-setting), --health or both")
    try:
        if args.namespace:
            send_kline({"EVENTHUB__fullyQualifiedNamespace": args.namespace}, args.namespace)
        elif args.connection_setting:
            conn = os.environ.get(args.connection_setting, "").strip()
            if not conn:
                raise RuntimeError(f"environment variable {args.connection_setting} is not set")
            send_kline({"EVENTHUB": conn}, f"the connection string in {args.connection_setting}")
        if args.health:
            check_health(args.health, args.attempts, args.delay)
    except Exception as exc:  # one line for the workflow log; no value of any setting is printed
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
