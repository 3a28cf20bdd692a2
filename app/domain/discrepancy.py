"""Where the live broker and the local cache disagree, per (account, conId)."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar, cast

from app.domain.values import BrokerPosition, Lifecycle, PositionKey

T = TypeVar("T")


class Discrepancy(StrEnum):
    """How one key's broker row and cached OPEN lifecycle compare."""

    MISSING_AT_BROKER = "missing_at_broker"  # cached OPEN, the broker does not report it
    NOT_CACHED = "not_cached"  # the broker reports it, the cache has no OPEN lifecycle
    QUANTITY_DIFFERS = "quantity_differs"  # both, with different quantities


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement, with the sentence a tooltip shows."""

    key: PositionKey
    kind: Discrepancy
    explanation: str


STEP = 4_000
"""Rows handled between two yields of `comparing` (a few milliseconds of work)."""


def compare(
    cached: Iterable[Lifecycle],
    broker: Iterable[BrokerPosition] | None,
) -> dict[PositionKey, Difference]:
    """Disagreements by key. `broker` None means no live broker data (offline): then only the
    warnings the ledger itself recorded (missing since the last complete snapshot) are shown."""
    return run_steps(comparing(cached, broker))


def comparing(
    cached: Iterable[Lifecycle],
    broker: Iterable[BrokerPosition] | None,
) -> Generator[None, None, dict[PositionKey, Difference]]:
    """`compare` in steps: yields after every STEP rows and returns the disagreements.

    The window drives it on its own thread between repaints: on a worker thread, its Python
    would make each of a repaint's thousand calls into the table models wait for the GIL.
    """
    # Keys spelled out rather than through `.key`: the window runs this over 20,000 rows.
    open_rows: dict[PositionKey, Lifecycle] = {}
    found: dict[PositionKey, Difference] = {}
    for chunk in _chunks(cached):
        for p in chunk:
            if not p.is_open:
                continue
            key = (p.account, p.contract.con_id)
            open_rows[key] = p
            if p.missing_since is not None:
                found[key] = Difference(
                    key,
                    Discrepancy.MISSING_AT_BROKER,
                    f"The broker has not reported this position since "
                    f"{p.missing_since:%d %b %H:%M} UTC and no fills explain it. Check its "
                    "history, then Mark closed… if it was closed elsewhere.",
                )
        yield
    if broker is None:
        return found
    live: dict[PositionKey, BrokerPosition] = {}
    for chunk in _chunks(broker):
        for row in chunk:
            if row.quantity:
                live[(row.account, row.contract.con_id)] = row
        yield
    for chunk in _chunks(open_rows.items()):
        for key, position in chunk:
            row = live.get(key)
            if row is None:
                if key not in found:
                    found[key] = Difference(key, Discrepancy.MISSING_AT_BROKER, _NOT_REPORTED)
            elif row.quantity != position.quantity and key not in found:
                found[key] = Difference(
                    key,
                    Discrepancy.QUANTITY_DIFFERS,
                    f"The broker reports {row.quantity}, the cache holds {position.quantity}; "
                    "the next sync will book the difference.",
                )
        yield
    for chunk in _chunks(live.keys() - open_rows.keys()):
        for key in chunk:
            found[key] = Difference(
                key,
                Discrepancy.NOT_CACHED,
                f"The broker reports {live[key].quantity} but the cache has no open position "
                "yet; the next sync will open it.",
            )
        yield
    return found


def run_steps(steps: Generator[None, None, T]) -> T:
    """Drive a stepwise computation to its end at once; its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    """`items` in lists of STEP."""
    rows = items if isinstance(items, list) else list(items)
    for start in range(0, len(rows), STEP):
        yield rows[start : start + STEP]


_NOT_REPORTED = (
    "The broker does not report this cached OPEN position right now; the next complete sync "
    "will record it as missing unless fills explain it."
)
