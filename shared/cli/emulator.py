"""`marketflow emulator`: the Event Hubs emulator (package `emulator/`) serving MarketFlow's topology.

This module only parses options and hands over; the emulator itself lives in the top-level
`emulator` package and never imports `shared`. Point the pipeline at it with
`EVENTHUB="Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"`.
"""

from __future__ import annotations

import argparse
from typing import Any

from .errors import CliError


def _emulator(args: argparse.Namespace) -> int:
    from emulator.app import run
    from emulator.config import ConfigError
    from shared import topology

    try:
        return run(args, default_hubs=topology.HUBS.values())
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None


def register(sub: Any) -> None:
    from emulator.options import add_arguments

    p = sub.add_parser("emulator", help="run the Event Hubs emulator (AMQP 1.0, for the stock azure-eventhub SDK)",
                       description="An Event Hubs emulator on loopback: MarketFlow's hubs (or a Config.json in the "
                       "official emulator's format), optional persistence, retention and Capture.")
    add_arguments(p)
    p.set_defaults(func=_emulator)
