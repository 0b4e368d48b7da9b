"""A pure-Python Azure Event Hubs emulator: an AMQP 1.0 server the stock azure-eventhub SDK talks to.

Dev tooling, not the product: nothing in MarketFlow's runtime imports it; the pipeline reaches it
only through a connection string (`Endpoint=sb://127.0.0.1:5672;...;UseDevelopmentEmulator=true`).
"""

from .app import BackgroundEmulator, Emulator, connection_string, start
from .config import CaptureConfig, ConfigError, HubConfig, NamespaceConfig, from_hubs, load_config, parse_config

__all__ = ["BackgroundEmulator", "CaptureConfig", "ConfigError", "Emulator", "HubConfig", "NamespaceConfig",
           "connection_string", "from_hubs", "load_config", "parse_config", "start"]
