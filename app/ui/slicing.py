"""Bringing a table model to new rows without stalling the event loop: in slices, with the
passes over every row of a big table on a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.ui.models.keyed import KeyedTableModel

SLICE = 2_000  # rows per model update slice: a few milliseconds of GUI work each

BIG_TABLE = 2 * SLICE  # from this many rows on, differences are worked out off the GUI thread


def stale_keys(key_of: Callable[[Any], Any], held: list[Any], rows: list[Any]) -> list[Any]:
    """Keys of `held` that `rows` no longer has (no Qt calls: runs on a worker thread too)."""
    keys = {key_of(r) for r in rows}
    return [key for key in map(key_of, held) if key not in keys]


async def replace_rows(model: KeyedTableModel, rows: list[Any]) -> None:
    """Bring `model` to exactly `rows`, in slices; keeps selection for kept keys.

    From BIG_TABLE rows on, the passes over every row (which keys went stale; a first
    fill's order) run on a worker thread: tens of milliseconds at 20,000 rows.
    """
    held = model.values()
    if len(rows) + len(held) > BIG_TABLE:
        stale = await asyncio.to_thread(stale_keys, model.key_of, held, rows)
    else:
        stale = stale_keys(model.key_of, held, rows)
    if len(rows) > SLICE and len(stale) >= len(held) - SLICE:
        # A first paint of a big cache (or a new ledger): one reset is cheaper than
        # thousands of inserts and removals; its ordering runs on a worker thread.
        prepared = await asyncio.to_thread(model.prepare_reset, rows)
        model.apply_reset(prepared)
        return
    if stale:
        model.remove(stale)
    for start in range(0, len(rows), SLICE):
        model.upsert(rows[start : start + SLICE])
        await asyncio.sleep(0)  # let Qt paint and handle input between slices
