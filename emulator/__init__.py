"""A pure-Python Azure Event Hubs emulator: an AMQP 1.0 server the stock azure-eventhub SDK talks to.

Dev tooling, not the product: nothing in MarketFlow's runtime imports it; the pipeline reaches it
only through a connection string (`Endpoint=sb://127.0.0.1:5672;...;UseDevelopmentEmulator=true`).

The names below are imported when first used (PEP 562), so `emulator.options`, which the
`marketflow` parser imports, does not load the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import BackgroundEmulator, Emulator, connection_string, start
    from .config import CaptureConfig, ConfigError, HubConfig, NamespaceConfig, from_hubs, load_config, parse_config

_HOME = {"BackgroundEmulator": "app", "Emulator": "app", "connection_string": "app", "start": "app",
         "CaptureConfig": "config", "ConfigError": "config", "HubConfig": "config", "NamespaceConfig": "config",
         "from_hubs": "config", "load_config": "config", "parse_config": "config"}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = ["BackgroundEmulator", "CaptureConfig", "ConfigError", "Emulator", "HubConfig", "NamespaceConfig",
           "connection_string", "from_hubs", "load_config", "parse_config", "start"]
