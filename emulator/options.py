"""The emulator's command-line options, apart from the server: `marketflow --help` builds every
command's parser, and this module imports only argparse."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5672, help="AMQP port (default 5672; 0 picks a free one)")
    p.add_argument("--health-port", type=int, default=5300, help="GET /health port (default 5300; -1 disables)")
    p.add_argument("--config", help="hubs from a Config.json in the Event Hubs emulator's format")
    p.add_argument("--data-dir", help="persist events here and reload them on start (default: in memory)")
    p.add_argument("--retention-hours", type=float, help="retention for every hub (default: each hub's own)")
    p.add_argument("--capture-dir", help="write Event Hubs Capture Avro files under this folder")
    p.add_argument("--capture-interval", type=float, default=300.0, help="Capture time window in seconds")
    p.add_argument("--capture-size", type=int, default=300 * 1024 * 1024, help="Capture size window in bytes")
    p.add_argument("--key", default="SAS_KEY_VALUE", help="shared access key (default SAS_KEY_VALUE)")
    p.add_argument("--log-level", default="INFO")
