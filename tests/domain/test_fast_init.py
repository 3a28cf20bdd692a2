"""app.domain.fast_init: the replaced __init__ builds exactly what dataclasses' own would."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from app.broker.convert import Mark
from app.domain.fast_init import fast_init
from app.domain.fold import _Move
from app.domain.history import Observation
from app.domain.plan import LifecycleChange, MarketUpdate, PlannedEvent
from app.domain.values import BrokerPosition, Contract, Fill, Lifecycle

FAST = (Contract, BrokerPosition, Lifecycle, PlannedEvent, LifecycleChange, MarketUpdate,
        Observation, Mark, Fill, _Move)  # fmt: skip


def _generated_init(cls: type[Any]) -> Any:
    """The __init__ dataclasses writes for `cls` (a plain twin of the class, same fields)."""
    twin = dataclasses.make_dataclass(
        cls.__name__,
        [
            (f.name, Any, dataclasses.field(default=f.default))
            if f.default is not dataclasses.MISSING
            else (f.name, Any)
            for f in dataclasses.fields(cls)
        ],
        frozen=True,
        slots=True,
    )
    return twin


def _slots(value: Any) -> list[Any]:
    return [getattr(value, f.name) for f in dataclasses.fields(value)]


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_the_same_signature_and_values_as_dataclasses_init(cls: type[Any]) -> None:
    """Positional, keyword and defaulted arguments land in the same fields; the class stays
    frozen, comparable, hashable alike and picklable."""
    twin = _generated_init(cls)
    ours = inspect.signature(cls.__init__)
    theirs = inspect.signature(twin.__init__)
    assert [(p.name, p.default, p.kind) for p in ours.parameters.values()] == [
        (p.name, p.default, p.kind) for p in theirs.parameters.values()
    ]
    fields = dataclasses.fields(cls)
    values = [object() for _ in fields]  # distinct sentinels: a swapped field shows
    assert _slots(cls(*values)) == _slots(twin(*values)) == values
    keywords = {f.name: v for f, v in zip(fields, values, strict=True)}
    assert _slots(cls(**keywords)) == values
    required = [f for f in fields if f.default is dataclasses.MISSING]
    assert _slots(cls(*values[: len(required)])) == _slots(twin(*values[: len(required)]))
    built = cls(*values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, fields[0].name, None)
    assert dataclasses.replace(built, **{fields[-1].name: "x"}) == cls(*values[:-1], "x")
    with pytest.raises(TypeError):
        cls(*values, None)  # one too many
    with pytest.raises(TypeError):
        cls(*values[: len(required) - 1])  # one too few


def test_a_real_lifecycle_round_trips() -> None:
    life = Lifecycle(None, "DU111", Contract(265598, "AAPL"), 1, 2, "OPEN", 3)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(life)) == life
    assert hash(Contract(1, "X")) == hash(Contract(1, "X"))


def test_refuses_what_it_cannot_build() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: dataclasses.InitVar[int] = 0

    for cls in (NoSlots, NotFrozen, Factory, PostInit, KeywordOnly, WithInitVar, int):
        with pytest.raises(TypeError):
            fast_init(cls)
