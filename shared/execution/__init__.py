"""Order execution: the executor core (last look, idempotent intents) and the paper broker."""

from .executor import Broker, Executor
from .paper import PaperBroker

__all__ = ["Broker", "Executor", "PaperBroker"]
