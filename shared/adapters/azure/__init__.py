"""Azure adapters: Event Hubs publisher, Blob dead letters, connection settings resolved as the
Functions host resolves a binding's `connection`."""

from .blob_deadletter import BlobDeadLetterSink
from .eventhub_publisher import EventHubPublisher, to_event_data
from .settings import ConfigurationError, Connection, default_credential, resolve_connection

__all__ = ["BlobDeadLetterSink", "ConfigurationError", "Connection", "EventHubPublisher", "default_credential",
           "resolve_connection", "to_event_data"]
