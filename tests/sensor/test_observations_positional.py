"""observations.positional: the fast constructor the pipeline builds Message and Aggregate with gives
the same frozen object as the class, for every observation class it accepts."""
from __future__ import annotations

import dataclasses

import pytest

from otwatch.sensor import observations as O


@pytest.mark.parametrize("cls", O.ALL_TYPES, ids=lambda c: c.__name__)
def test_positional_builds_what_the_class_builds(cls):
    fields = dataclasses.fields(cls)
    args = [(i, f"v{i}") if f.name == "key" else f"v{i}" if i % 2 else i for i, f in enumerate(fields)]
    new = O.positional(cls)
    a, b = new(*args), cls(*args)
    assert type(a) is cls and a == b and repr(a) == repr(b) and hash(a) == hash(b)
    assert [getattr(a, f.name) for f in fields] == args
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.__setattr__(fields[0].name, 1)
    with pytest.raises(TypeError):
        new(*args[:-1])


def test_positional_refuses_what_it_cannot_build():
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    with pytest.raises(TypeError):
        O.positional(NoSlots)
