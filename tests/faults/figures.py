"""The figures the README's "Reliability" section quotes, tallied while tests/faults runs.

Each test records what it injected and what it verified; the terminal summary prints the
totals, and `POSITION_SYNC_FAULTS_REPORT=FILE` also writes them there as JSON.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

FULL = os.environ.get("POSITION_SYNC_FAULTS_FULL", "") not in ("", "0")
"""Full-size run (`POSITION_SYNC_FAULTS_FULL=1`): the bigger counts the README documents."""


def sized(ci: int, full: int) -> int:
    """`full` in a full-size run, else the CI-sized `ci`."""
    return full if FULL else ci


@dataclass
class Tally:
    """One fault family's counts."""

    faults: int = 0
    runs: int = 0
    rows_lost: int = 0
    false_closes: int = 0
    duplicate_fills: int = 0
    notes: list[str] = field(default_factory=list)


TALLIES: dict[str, Tally] = {}


def record(
    family: str,
    *,
    faults: int = 0,
    runs: int = 0,
    rows_lost: int = 0,
    false_closes: int = 0,
    duplicate_fills: int = 0,
    note: str = "",
) -> None:
    """Add to a family's counts (`runs`: sync or process runs verified after a fault)."""
    tally = TALLIES.setdefault(family, Tally())
    tally.faults += faults
    tally.runs += runs
    tally.rows_lost += rows_lost
    tally.false_closes += false_closes
    tally.duplicate_fills += duplicate_fills
    if note:
        tally.notes.append(note)
