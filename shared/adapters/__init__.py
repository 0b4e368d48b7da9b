"""Adapters between the shared handlers and the outside world: publishing, dead letters, batches.

Each outside world has its own folder: `azure/` (Event Hubs, Blob, Table, Key Vault), `binance/`
(REST venue, streams) and `local/` (SQLite and file stores). The modules at this level hold the
protocols, the in-memory implementations and the transport-neutral batch loop.

Handlers never touch Event Hubs or Blob Storage themselves; the Functions, the executor and the
tests hand them these adapters, so the same code path runs against Azure and in memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .azure import BlobDeadLetterSink, ConfigurationError, EventHubPublisher
    from .deadletter import DeadLetter, DeadLetterSink, InMemoryDeadLetterSink
    from .processing import BatchOutcome, BatchProcessor, Delivery, StepResult
    from .publisher import InMemoryPublisher, Publisher, PublishError, partition_key_of

# Every name is imported when first used (PEP 562): a submodule such as `binance.streams` (which
# the `marketflow` parser reads defaults from) then costs only itself, and the Azure SDKs, a few
# hundred ms, load only in a process that names an Azure adapter.
_HOME = {
    "BlobDeadLetterSink": "azure", "ConfigurationError": "azure", "EventHubPublisher": "azure",
    "DeadLetter": "deadletter", "DeadLetterSink": "deadletter", "InMemoryDeadLetterSink": "deadletter",
    "BatchOutcome": "processing", "BatchProcessor": "processing", "Delivery": "processing",
    "StepResult": "processing", "InMemoryPublisher": "publisher", "Publisher": "publisher",
    "PublishError": "publisher", "partition_key_of": "publisher",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "BatchOutcome", "BatchProcessor", "BlobDeadLetterSink", "ConfigurationError", "DeadLetter",
    "DeadLetterSink", "Delivery", "EventHubPublisher", "InMemoryDeadLetterSink", "InMemoryPublisher",
    "PublishError", "Publisher", "StepResult", "partition_key_of",
]
