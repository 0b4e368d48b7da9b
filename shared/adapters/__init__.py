"""Adapters between the shared handlers and the outside world: publishing, dead letters, batches.

Each outside world has its own folder: `azure/` (Event Hubs, Blob, Table, Key Vault), `binance/`
(REST venue, streams) and `local/` (SQLite and file stores). The modules at this level hold the
protocols, the in-memory implementations and the transport-neutral batch loop.

Handlers never touch Event Hubs or Blob Storage themselves; the Functions, the executor and the
tests hand them these adapters, so the same code path runs against Azure and in memory.
"""

from .azure import BlobDeadLetterSink, ConfigurationError, EventHubPublisher
from .deadletter import DeadLetter, DeadLetterSink, InMemoryDeadLetterSink
from .processing import BatchOutcome, BatchProcessor, Delivery, StepResult
from .publisher import InMemoryPublisher, Publisher, PublishError, partition_key_of

__all__ = [
    "BatchOutcome", "BatchProcessor", "BlobDeadLetterSink", "ConfigurationError", "DeadLetter",
    "DeadLetterSink", "Delivery", "EventHubPublisher", "InMemoryDeadLetterSink", "InMemoryPublisher",
    "PublishError", "Publisher", "StepResult", "partition_key_of",
]
