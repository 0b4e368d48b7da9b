"""What a handler raises, sorted by whose fault it is (the batch loop acts on the kind).

* `EventFault`: the event itself is wrong and always will be (late, conflicting, an output
  that can never fit the hub). The loop dead-letters it with `reason` and the batch goes on.
* `InfrastructureError`: something outside the event failed (a store, the network); a retry can
  fix it. The loop lets it propagate, so the trigger's retry policy re-runs the batch.
* Anything else is a bug in a handler: the loop dead-letters the event as `HANDLER_ERROR` with
  the stack and counts it (`marketflow.handler_errors`), so one poisoned event cannot block a
  partition and an alert still fires.
"""

from __future__ import annotations


class EventFault(Exception):
    """The event's own fault; `reason` is the dead letter's reason code."""

    reason = "EVENT_FAULT"


class LateEvent(EventFault):
    """A market event older than the last one of its symbol (out of order, or very late)."""

    reason = "LATE"


class IdConflict(EventFault):
    """An id already seen with different content: two different events cannot share an id."""

    reason = "ID_CONFLICT"


class OutputTooLarge(EventFault):
    """An output of this event is larger than the hub accepts: a retry could never publish it."""

    reason = "OUTPUT_TOO_LARGE"


class InfrastructureError(RuntimeError):
    """A dependency failed (store, network): transient, retry the batch."""
