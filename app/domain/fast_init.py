"""`fast_init`: a frozen, slotted dataclass's `__init__` that fills the slots directly.

A frozen dataclass refuses attribute assignment, so the `__init__` that `dataclasses` writes for
it stores every field with `object.__setattr__(self, name, value)`, a generic attribute lookup
per field (~150 ns each; 3 µs for a 21-field Lifecycle). A first sync of 20,000 positions builds
over 100,000 such values — each portfolio row's mark and merged row, then every lifecycle, event,
change and observation of the plan — and object construction was the largest part of reconcile.
`fast_init` replaces that `__init__` with one that stores each argument through its own slot's
descriptor: the same signature (positional or keyword, the same defaults), the same values, the
instance as frozen as before, in ~60% of the time (tests/domain/test_fast_init.py holds the two
equal for every class that uses it).

Only what the plain generated `__init__` does is supported: a class with default factories,
`init=False` fields, InitVars, keyword-only fields or a `__post_init__` is refused when decorated.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import Any, TypeVar

_T = TypeVar("_T")

_SELF = "self"


def fast_init(cls: type[_T]) -> type[_T]:
    """Decorate a `@dataclass(frozen=True, slots=True)` class (apply above the dataclass
    decorator); raises TypeError for anything else (see the module)."""
    _check(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    params: list[str] = []
    body: list[str] = []
    for n, field in enumerate(fields):
        namespace[f"_set{n}"] = cls.__dict__[field.name].__set__
        if field.default is dataclasses.MISSING:
            params.append(field.name)
        else:
            namespace[f"_default{n}"] = field.default
            params.append(f"{field.name}=_default{n}")
        body.append(f"    _set{n}({_SELF}, {field.name})")
    if {*namespace, _SELF} & {f.name for f in fields}:
        raise TypeError(f"{cls.__name__}: a field name collides with fast_init's own names")
    source = f"def __init__({', '.join([_SELF, *params])}):\n" + ("\n".join(body) or "    pass")
    exec(source, namespace)  # the same technique dataclasses uses to write its __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = f"Initialise the fields of {cls.__name__} (app.domain.fast_init)."
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _check(cls: type[Any]) -> None:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    fields = dataclasses.fields(cls)
    for field in fields:
        if not field.init or field.kw_only or field.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name}: only plain fields are supported")
        if not isinstance(cls.__dict__.get(field.name), types.MemberDescriptorType):
            raise TypeError(f"{cls.__name__}.{field.name} is not a slot of the class itself")
    # InitVars are no fields but parameters of the generated __init__.
    names = list(inspect.signature(cls.__init__).parameters)[1:]
    if names != [field.name for field in fields]:
        raise TypeError(f"{cls.__name__}.__init__ takes more than its fields")
