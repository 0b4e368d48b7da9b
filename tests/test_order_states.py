"""The order state machine's transition table and the client order id derivation."""

from __future__ import annotations

import pytest

from shared.events import deterministic_id
from shared.execution.orders import (
    CLIENT_ORDER_ID,
    FINAL,
    FROM_VENUE,
    TRANSITIONS,
    InvalidTransition,
    OrderState,
    client_order_id,
    is_ours,
    transition,
)
from shared.execution.venue import VenueOrderStatus

S = OrderState


def test_every_state_has_a_row_and_final_states_go_nowhere() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    for state in FINAL:
        assert TRANSITIONS[state] == frozenset() and state.is_final
    for state in set(OrderState) - FINAL:
        assert TRANSITIONS[state], f"{state} is a dead end"


@pytest.mark.parametrize(("a", "b"), [
    (S.INITIALIZED, S.SUBMITTED), (S.SUBMITTED, S.ACCEPTED), (S.ACCEPTED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED), (S.SUBMITTED, S.UNKNOWN),
    (S.UNKNOWN, S.FILLED), (S.UNKNOWN, S.REJECTED), (S.ACCEPTED, S.CANCELED), (S.ACCEPTED, S.EXPIRED),
])
def test_valid_transitions_are_recorded_with_cause(a: OrderState, b: OrderState) -> None:
    t = transition(a, b, "because", 42)
    assert (t.from_state, t.to_state, t.cause, t.time) == (a, b, "because", 42)


@pytest.mark.parametrize(("a", "b"), [
    (S.FILLED, S.SUBMITTED), (S.FILLED, S.FILLED), (S.REJECTED, S.ACCEPTED), (S.CANCELED, S.FILLED),
    (S.INITIALIZED, S.FILLED), (S.INITIALIZED, S.UNKNOWN), (S.ACCEPTED, S.SUBMITTED), (S.ACCEPTED, S.REJECTED),
    (S.UNKNOWN, S.SUBMITTED), (S.EXPIRED, S.CANCELED),
])
def test_invalid_transitions_raise(a: OrderState, b: OrderState) -> None:
    with pytest.raises(InvalidTransition) as err:
        transition(a, b, "no", 0)
    assert err.value.from_state is a and err.value.to_state is b


def test_every_venue_status_maps_to_a_state() -> None:
    assert set(FROM_VENUE) == set(VenueOrderStatus)


def test_client_order_id_is_derived_and_valid() -> None:
    intent_id = deterministic_id("intent", "x")
    coid = client_order_id(intent_id)
    assert coid == client_order_id(intent_id) and CLIENT_ORDER_ID.match(coid) and len(coid) <= 36
    assert is_ours(coid) and not is_ours("web_123")
    assert client_order_id(deterministic_id("intent", "y")) != coid
    with pytest.raises(ValueError):
        client_order_id("not an id with spaces")
