"""Turning domain values into JSON documents and terminal tables for the CLI.

The JSON documents themselves live in app.domain.documents (the local API prints the same ones);
they are re-exported here for the commands.
"""

from __future__ import annotations

from app.domain.documents import (
    dec,
    iso,
    lifecycle_json,
    lot_json,
    run_json,
    stats_json,
    status_json,
)

__all__ = [
    "age",
    "dec",
    "iso",
    "lifecycle_json",
    "lot_json",
    "run_json",
    "stats_json",
    "status_json",
    "table",
]


def age(seconds: float) -> str:
    """A short human age: 42 s, 7 min, 3 h, 2 d."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def table(headers: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    """A plain aligned text table; columns in `numeric` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])
