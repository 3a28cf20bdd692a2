"""Execution identity: IB execIds, their corrections, and deduplication against the cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.domain.values import Fill


def base_exec_id(exec_id: str) -> str:
    """The execId up to its last dot: a correction shares it with the original.

    IB execIds look like `0000e0d5.6551d6b5.01.01`; a correction of that fill arrives as
    `0000e0d5.6551d6b5.01.02`. An id without a dot is its own base.
    """
    head, dot, _ = exec_id.rpartition(".")
    return head if dot else exec_id


def correction_rank(exec_id: str) -> tuple[int, str]:
    """Orders versions of one execution: a higher rank replaces a lower one."""
    _, _, tail = exec_id.rpartition(".")
    try:
        return (int(tail, 16), exec_id)
    except ValueError:
        return (-1, exec_id)


@dataclass(frozen=True, slots=True)
class SortedFills:
    """The snapshot's fills split against what the cache already holds."""

    new: tuple[Fill, ...]
    """Never seen before (by base execId): these move quantities and P&L."""
    corrections: tuple[tuple[str, Fill], ...]
    """(stored execId, newer version) pairs: the stored row is replaced."""


def sort_fills(fills: Iterable[Fill], known: Mapping[str, Fill]) -> SortedFills:
    """Deduplicate `fills` by execId and against `known` (keyed by base execId).

    Within the snapshot only the latest version of each execution is kept. A fill whose base is
    already stored is a replay (ignored) unless it is a later correction.
    """
    latest: dict[str, Fill] = {}
    for fill in fills:
        base = base_exec_id(fill.exec_id)
        held = latest.get(base)
        if held is None or correction_rank(fill.exec_id) > correction_rank(held.exec_id):
            latest[base] = fill
    new: list[Fill] = []
    corrections: list[tuple[str, Fill]] = []
    for base, fill in latest.items():
        stored = known.get(base)
        if stored is None:
            new.append(fill)
        elif correction_rank(fill.exec_id) > correction_rank(stored.exec_id) or (
            # The same execution, now with the commission report that was missing when stored.
            fill.exec_id == stored.exec_id
            and stored.commission is None
            and fill.commission is not None
        ):
            corrections.append((stored.exec_id, fill))
    new.sort(key=lambda f: (f.time, f.exec_id))
    return SortedFills(tuple(new), tuple(corrections))
