"""The order state machine, as data: a transition table in the manner of NautilusTrader's.

An order starts INITIALIZED (stored, not yet sent), is SUBMITTED (stored again, then sent), and
ends FILLED, CANCELED, REJECTED or EXPIRED. UNKNOWN is an ambiguous outcome (timeout, transport
error, 5xx): the executor queries the venue by client order id and moves on from what it learns.
A transition not in `TRANSITIONS` raises `InvalidTransition`; each one is recorded with its cause.

The client order id is derived from the intent id (`client_order_id`), so the same intent always
names the same order.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from shared.events.ids import client_order_id as _derive

from .venue import VenueOrderStatus

CLIENT_ORDER_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
CLIENT_ORDER_ID_PREFIX = "mf-"


class OrderState(StrEnum):
    INITIALIZED = "INITIALIZED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in FINAL

    @property
    def is_open(self) -> bool:
        """Sent (or maybe sent) and not final: the orders reconciliation asks the venue about."""
        return self in OPEN


S = OrderState
FINAL = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED})
OPEN = frozenset({S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.UNKNOWN})

# state -> the states it may move to. PARTIALLY_FILLED -> PARTIALLY_FILLED is a further fill.
# REJECTED after UNKNOWN: the venue never saw the order (not found after every query).
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.INITIALIZED: frozenset({S.SUBMITTED, S.REJECTED}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED,
                            S.UNKNOWN}),
    S.ACCEPTED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.UNKNOWN}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}

# What a venue's order status means for our order.
FROM_VENUE: dict[VenueOrderStatus, OrderState] = {
    VenueOrderStatus.NEW: S.ACCEPTED,
    VenueOrderStatus.PENDING_NEW: S.ACCEPTED,
    VenueOrderStatus.PARTIALLY_FILLED: S.PARTIALLY_FILLED,
    VenueOrderStatus.FILLED: S.FILLED,
    VenueOrderStatus.CANCELED: S.CANCELED,
    VenueOrderStatus.PENDING_CANCEL: S.ACCEPTED,  # still working until the venue says CANCELED
    VenueOrderStatus.REJECTED: S.REJECTED,
    VenueOrderStatus.EXPIRED: S.EXPIRED,
    VenueOrderStatus.EXPIRED_IN_MATCH: S.EXPIRED,
}


class InvalidTransition(ValueError):
    def __init__(self, from_state: OrderState, to_state: OrderState, cause: str) -> None:
        super().__init__(f"invalid order transition {from_state} -> {to_state} ({cause})")
        self.from_state = from_state
        self.to_state = to_state
        self.cause = cause


class Transition(NamedTuple):
    """One recorded state change: from, to, why, and when (ms UTC)."""

    from_state: OrderState
    to_state: OrderState
    cause: str
    time: int


def can_transition(from_state: OrderState, to_state: OrderState) -> bool:
    return to_state in TRANSITIONS[from_state]


def transition(from_state: OrderState, to_state: OrderState, cause: str, time: int) -> Transition:
    """The checked transition; raises InvalidTransition when the table has no such edge."""
    if to_state not in TRANSITIONS[from_state]:
        raise InvalidTransition(from_state, to_state, cause)
    return Transition(from_state, to_state, cause, time)


def client_order_id(intent_id: str) -> str:
    """The venue's client order id of an intent (Binance `newClientOrderId`): "mf-" and the first
    32 characters of the intent id, so <= 36 characters of [a-zA-Z0-9-_], derived, never random."""
    coid = _derive(intent_id)
    if not CLIENT_ORDER_ID.match(coid):
        raise ValueError(f"intent id {intent_id!r} does not give a valid client order id")
    return coid


def is_ours(client_order_id: str) -> bool:
    """Whether a venue order was placed by this executor (an operator's manual order is not)."""
    return client_order_id.startswith(CLIENT_ORDER_ID_PREFIX)
