"""Adapters between the shared handlers and the outside world: publishing, dead letters, batches.

Each outside world has its own folder: `azure/` (Event Hubs, Blob, Table, Key Vault), `binance/`
(REST venue, streams) and `local/` (SQLite and file stores). The modules at this level hold the
protocols, the in-memory implementations and the transport-neutral batch loop.

Handlers never touch Event Hubs or Blob Storage themselves; the Functions, the executor and the
tests hand them these adapters, so the same code path runs against Azure and in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .deadletter import DeadLetter, DeadLetterSink, InMemoryDeadLetterSink
from .processing import BatchOutcome, BatchProcessor, Delivery, StepResult
from .publisher import InMemoryPublisher, Publisher, PublishError, partition_key_of

if TYPE_CHECKING:
    from .azure import BlobDeadLetterSink, ConfigurationError, EventHubPublisher

# The Azure adapters are imported when first named: the Azure SDKs cost a few hundred ms of
# every process that imports this package, and the replay and the CLI's other commands use none.
_AZURE = frozenset({"BlobDeadLetterSink", "ConfigurationError", "EventHubPublisher"})


def __getattr__(name: str) -> Any:
    if name in _AZURE:
        from . import azure

        return getattr(azure, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "BatchOutcome", "BatchProcessor", "BlobDeadLetterSink", "ConfigurationError", "DeadLetter",
    "DeadLetterSink", "Delivery", "EventHubPublisher", "InMemoryDeadLetterSink", "InMemoryPublisher",
    "PublishError", "Publisher", "StepResult", "partition_key_of",
]
