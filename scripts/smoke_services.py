"""Deploy smoke check of the AKS services (deploy-executor.yml), over each pod's HTTP port.

The workflow port-forwards every running executor and ingestor pod to the runner and passes the
local URLs. It passes when, within `--timeout`:

- every executor replica answers `/readyz?standby=ok` 200 (fit to trade, now or on takeover) and
  exactly one answers plain `/readyz` 200 (the replica holding the lease, consuming);
- every ingestor replica answers `/readyz` 200.

A fresh rollout needs a few seconds for the new holder to take the lease and connect, so the
checks are retried until the deadline. Exit 0 when they pass, 1 otherwise, with one line per
replica saying what it answered last. tests/test_smoke_services.py runs it against the real
executor HTTP app on loopback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from typing import NamedTuple


class Answer(NamedTuple):
    status: int  # 0: no HTTP answer
    role: str


def get(url: str) -> Answer:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError:
        return Answer(0, "")
    try:
        role = str(json.loads(body).get("role", ""))
    except (ValueError, AttributeError):
        role = ""
    return Answer(status, role)


def check(executors: list[str], ingestors: list[str]) -> tuple[bool, list[str]]:
    lines, ok = [], True
    active = 0
    for base in executors:
        fit, trading = get(f"{base}/readyz?standby=ok"), get(f"{base}/readyz")
        active += trading.status == 200
        ok &= fit.status == 200
        lines.append(f"executor {base}: readyz?standby=ok {fit.status or 'no answer'}, "
                     f"readyz {trading.status or 'no answer'} ({trading.role or 'unknown role'})")
    if executors and active != 1:
        ok = False
        lines.append(f"executor: {active} replicas hold the lease and consume (want exactly 1)")
    for base in ingestors:
        ready = get(f"{base}/readyz")
        ok &= ready.status == 200
        lines.append(f"ingestor {base}: readyz {ready.status or 'no answer'}")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", action="append", default=[], metavar="URL", help="an executor pod's base URL")
    parser.add_argument("--ingestor", action="append", default=[], metavar="URL", help="an ingestor pod's base URL")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to keep retrying")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between rounds")
    args = parser.parse_args(argv)
    if not args.executor and not args.ingestor:
        parser.error("give --executor and/or --ingestor URLs")
    deadline = time.monotonic() + args.timeout
    while True:
        ok, lines = check([u.rstrip("/") for u in args.executor], [u.rstrip("/") for u in args.ingestor])
        if ok or time.monotonic() + args.every > deadline:
            break
        time.sleep(args.every)
    for line in lines:
        print(f"smoke: {line}", file=sys.stdout if ok else sys.stderr)
    if not ok:
        print(f"smoke: FAILED after {args.timeout:g} s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
