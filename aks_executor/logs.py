"""JSON log lines with the correlation id of the event being handled, scrubbed of secrets.

One line per record on stderr: `ts`, `level`, `logger`, `msg`, the `correlation_id` and
`event_id` of the event in hand (set with `correlation()` around each event; a contextvar, so
each asyncio task has its own), any `extra={...}` fields, and `exc` for a traceback. The
formatter replaces every secret value its resolver has handed out with `***`, in the message,
the extras and the traceback alike: a last line of defence, not a licence to log secrets.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from shared.adapters.azure.keyvault import redact

_CORRELATION: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "marketflow_correlation", default=(None, None))
# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def correlation(correlation_id: str | None, event_id: str | None = None) -> Iterator[None]:
    """Tag every log line inside the block with this event's ids."""
    token = _CORRELATION.set((correlation_id, event_id))
    try:
        yield
    finally:
        _CORRELATION.reset(token)


def current_correlation() -> tuple[str | None, str | None]:
    return _CORRELATION.get()


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple, service: str = "marketflow-executor") -> None:
        super().__init__()
        self._secrets = secrets
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "service": self._service,
            "msg": record.getMessage(),
        }
        correlation_id, event_id = _CORRELATION.get()
        if correlation_id is not None:
            line["correlation_id"] = correlation_id
        if event_id is not None:
            line["event_id"] = event_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        text = json.dumps(line, default=repr, ensure_ascii=False)
        return redact(text, self._secrets())


def setup(level: str = "INFO", secrets: Callable[[], Iterable[str]] = tuple, stream: Any = None,
          service: str = "marketflow-executor") -> logging.Handler:
    """Route every logger through one JSON handler (replacing the root's handlers)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(secrets, service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The Azure SDKs log each HTTP request (headers included) at INFO: keep them to warnings.
    for noisy in ("azure", "uamqp", "azure.eventhub._pyamqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
