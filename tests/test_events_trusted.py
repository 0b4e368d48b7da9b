"""`trusted()` builds exactly what pydantic's validation builds, for every event type and factory.

`trusted` skips validation between in-process handlers (see shared/events/base.py). This pins,
for a sample of every `Event` subclass (and `Fill`), that it gives the instance `model_validate`
gives from the same values: equal, same repr, same set fields, same JSON, same field order; and
that a missing required field or an unknown one is an error, never a silent None.
"""

from __future__ import annotations

from typing import Any

import factories
import pytest
from pydantic import BaseModel, ValidationError

from shared.events import EVENT_TYPES, Event, Fill
from shared.events.base import trusted

SAMPLES = factories.one_of_each()


def subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | subclasses(sub)
    return out


def test_the_samples_cover_every_event_type() -> None:
    ours = {c for c in subclasses(Event) if c.__module__.startswith("shared.")}
    assert ours <= {type(s) for s in SAMPLES}
    assert set(EVENT_TYPES.values()) <= ours
    assert Fill in {type(s) for s in SAMPLES}


def assert_same(a: BaseModel, b: BaseModel) -> None:
    """The same class, value, repr and fields set: what the validator would have built."""
    assert type(a) is type(b)
    assert a == b and repr(a) == repr(b)
    assert a.model_fields_set == b.model_fields_set
    assert a.model_dump_json() == b.model_dump_json()
    assert list(a.__dict__) == list(b.__dict__) == list(type(a).model_fields)
    assert a.__pydantic_extra__ == b.__pydantic_extra__ and a.__pydantic_private__ == b.__pydantic_private__


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_the_factory_builds_what_validation_builds(sample: BaseModel) -> None:
    given = {k: getattr(sample, k) for k in sample.model_fields_set}
    assert_same(sample, type(sample).model_validate(given))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_trusted_equals_validation_with_every_field_and_with_only_the_set_ones(sample: BaseModel) -> None:
    cls = type(sample)
    every: dict[str, Any] = {k: getattr(sample, k) for k in cls.model_fields}
    assert_same(trusted(cls, dict(every)), cls.model_validate(every))
    given = {k: getattr(sample, k) for k in sample.model_fields_set}
    assert_same(trusted(cls, dict(given)), cls.model_validate(given))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_a_missing_required_or_unknown_field_is_an_error(sample: BaseModel) -> None:
    cls = type(sample)
    given = {k: getattr(sample, k) for k in sample.model_fields_set}
    for name, info in cls.model_fields.items():
        if not info.is_required():
            continue
        partial = {k: v for k, v in given.items() if k != name}
        with pytest.raises(ValidationError):
            cls.model_validate(partial)
        with pytest.raises(TypeError, match=name):
            trusted(cls, partial)
    with pytest.raises(TypeError, match="nonsense"):
        trusted(cls, {**{k: v for k, v in given.items() if k != next(iter(given))}, "nonsense": 1})
