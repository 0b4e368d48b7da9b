"""`marketflow`: replay real market history through the whole pipeline, and inspect the pieces.

Every command runs the same handlers the Azure Functions and the executor run; the CLI only
parses options, wires the pieces and writes output. Each command group lives in its own module
with a `register(subparsers)` function, listed in `COMMAND_MODULES`; modules are imported when
the parser is built, and heavy imports stay inside the command functions so `--help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from .errors import CliError

# Command modules, in the order their commands appear in `marketflow --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "shared.cli.replay",
    "shared.cli.sweep",
    "shared.cli.topology",
    "shared.cli.doctor",
    "shared.cli.host",
    "shared.cli.emulator",
    "shared.cli.replay_hub",
    "shared.cli.ingest",
    "shared.cli.download",
    "shared.cli.up",
    "shared.cli.executor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketflow", description="Replay real Binance market history through MarketFlow's pipeline: "
        "signals, risk (both layers), the paper executor and the position book.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        print(f"marketflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C: one line, no traceback; commands leave no half-written output behind.
        print("marketflow: interrupted", file=sys.stderr)
        return 130


__all__ = ["CliError", "build_parser", "main"]
