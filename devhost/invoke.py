"""Calling a function with a batch under its retry policy, as the Functions host does."""

from __future__ import annotations

import logging
import threading
from typing import Any, NamedTuple

from .bindings import EventHubTrigger

log = logging.getLogger("devhost")


class Invocation(NamedTuple):
    """What one batch's invocation came to. `checkpoint` is False only when shutdown cut a retry
    loop short: the host then leaves the batch for redelivery instead of checkpointing past it."""

    attempts: int
    error: str | None
    checkpoint: bool


def invoke(trigger: EventHubTrigger, payload: Any, stop: threading.Event) -> Invocation:
    """Call the function; after a raise, wait and call again while the retry policy allows."""
    delays = trigger.retry.delays() if trigger.retry is not None else iter(())
    attempts = 0
    while True:
        attempts += 1
        try:
            trigger.call(**{trigger.arg_name: payload})
            return Invocation(attempts, None, True)
        except Exception as exc:  # the function's failure: the retry policy decides, as in the host
            error = f"{type(exc).__name__}: {exc}"
            log.warning("function %s failed (attempt %d): %s", trigger.function, attempts, error, exc_info=True)
            delay = next(delays, None)
            if delay is None:
                log.error("function %s: retry policy exhausted after %d attempt(s); checkpointing past the "
                          "batch, as the Functions host does", trigger.function, attempts)
                return Invocation(attempts, error, True)
            if stop.wait(delay):
                return Invocation(attempts, error, False)
