"""Pre-trade risk: one engine for layer 1 (the risk Function) and layer 2 (the executor's last look)."""

from .config import RiskConfig
from .engine import RiskEngine
from .reasons import Reason

__all__ = ["Reason", "RiskConfig", "RiskEngine"]
