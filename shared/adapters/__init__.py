"""Adapters between the shared handlers and the outside world: publishing, dead letters, batches.

Handlers never touch Event Hubs or Blob Storage themselves; the Functions, the executor and the
tests hand them these adapters, so the same code path runs against Azure and in memory.
"""

from .deadletter import BlobDeadLetterSink, DeadLetter, DeadLetterSink, InMemoryDeadLetterSink
from .processing import BatchOutcome, BatchProcessor, Delivery, StepResult
from .publisher import EventHubPublisher, InMemoryPublisher, Publisher, PublishError, partition_key_of
from .settings import ConfigurationError

__all__ = [
    "BatchOutcome", "BatchProcessor", "BlobDeadLetterSink", "ConfigurationError", "DeadLetter",
    "DeadLetterSink", "Delivery", "EventHubPublisher", "InMemoryDeadLetterSink", "InMemoryPublisher",
    "PublishError", "Publisher", "StepResult", "partition_key_of",
]
