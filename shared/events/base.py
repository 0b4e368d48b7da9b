"""Fields every event carries: type, schema version, deterministic id, correlation id, UTC ms time."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
M = TypeVar("M", bound=BaseModel)


class Event(BaseModel):
    """Base of all wire events. Immutable; unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    TYPE: ClassVar[str] = "event"

    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    event_id: str = Field(min_length=8, max_length=64)
    # Follows one decision from the market event that caused it to the fill it ended in.
    correlation_id: str = Field(min_length=8, max_length=64)
    # When the event happened, Unix milliseconds UTC (for market data: the bar's close time).
    event_time: int = Field(ge=0)


_new = object.__new__
_set = object.__setattr__
# Per model: every field in declaration order holding its default (None if required), the field
# names in that order, their frozenset, and the frozenset of the required ones.
_TEMPLATES: dict[type[BaseModel], tuple[dict[str, Any], tuple[str, ...], frozenset[str], frozenset[str]]] = {}


def trusted(cls: type[M], data: dict[str, Any]) -> M:
    """An instance of `cls` from values this process derived from already validated inputs.

    Events are validated where they enter (decoded from a hub, read from a file) and where a value
    could be out of range (an order's size). Between the in-process handlers, a signal built from
    a validated bar, or a report built from a validated intent, would only be validated again,
    at several times this function's cost per event. The instance is what the validator
    would build from the same dict (defaults filled, the given fields marked set): tests pin that
    equality for every Event subclass and every factory that uses this (tests/test_events_trusted.py).
    A dict without every required field, or with an unknown one, raises TypeError. A factory on
    the hot path passes every field, in declaration order, which skips filling in defaults; any
    other dict is laid out in declaration order as the validator does.
    """
    entry = _TEMPLATES.get(cls)
    if entry is None:
        if any(f.default_factory is not None for f in cls.model_fields.values()):
            raise TypeError(f"{cls.__name__} has a default factory; trusted() shares defaults")
        entry = _TEMPLATES[cls] = ({name: None if f.is_required() else f.default
                                    for name, f in cls.model_fields.items()}, tuple(cls.model_fields),
                                   frozenset(cls.model_fields),
                                   frozenset(name for name, f in cls.model_fields.items() if f.is_required()))
    template, names, every, required = entry
    if tuple(data) == names:  # every field, in declaration order: the hot path
        fields, given = data, every
    else:
        given = frozenset(data)
        if not given >= required or not given <= every:
            missing, unknown = sorted(required - given), sorted(given - every)
            raise TypeError(f"trusted({cls.__name__}): missing {missing}, unknown {unknown}")
        fields = template.copy()
        fields.update(data)
    obj = _new(cls)
    _set(obj, "__dict__", fields)
    _set(obj, "__pydantic_fields_set__", given)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj
