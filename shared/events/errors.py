"""Typed decode errors that name the offending field, so dead-letter reasons are actionable."""

from __future__ import annotations


class EventDecodeError(ValueError):
    """An event body could not be turned into a known event."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownSchemaVersion(EventDecodeError):
    """The body declares a schema version this code does not understand."""


class UnknownEventType(EventDecodeError):
    """The body declares an event type this code does not understand."""


class MalformedEvent(EventDecodeError):
    """The body is not JSON, or a field is missing, of the wrong type or out of range."""
