"""Pre-trade risk: one engine for layer 1 (the risk Function) and layer 2 (the executor's last look).

Modules: `reasons` (stable codes), `config` (every limit and its default), `states` (trading
states, their store and events), `checks` (one function per check), `filters` (Binance exchange
filters), `throttle` (order-rate windows), `engine` (both layers). See docs/risk.md.
"""

from .config import RiskConfig, RiskConfigError
from .engine import RiskEngine
from .filters import ExchangeFilters, SymbolFilters, parse_exchange_info
from .reasons import Reason
from .states import InMemoryStateStore, JsonFileStateStore, StateStore, TradingState

__all__ = [
    "ExchangeFilters", "InMemoryStateStore", "JsonFileStateStore", "Reason", "RiskConfig", "RiskConfigError",
    "RiskEngine", "StateStore", "SymbolFilters", "TradingState", "parse_exchange_info",
]
