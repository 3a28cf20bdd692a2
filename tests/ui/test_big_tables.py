"""Tables beyond a few thousand rows: the work over every row leaves the GUI thread, and the
window still ends up showing exactly what a small table would (tests/bench measures the stalls).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from PySide6.QtCore import Qt

from app.sim.runner import SimulatorThread
from app.sim.scenarios import build_scale
from app.ui.models.keyed import Column, KeyedTableModel
from app.ui.slicing import BIG_TABLE
from tests.ui.conftest import eventually


@dataclass(frozen=True)
class Item:
    key: int
    group: str
    amount: Decimal


class Items(KeyedTableModel):
    columns = (
        Column("Group", lambda r: r.group, lambda r: r.group),
        Column("Amount", lambda r: r.amount, str, numeric=True),
    )
    default_order = staticmethod(lambda r: (r.group, r.key))


def _shown(model: KeyedTableModel) -> list[int]:
    return [model.row(i).key for i in range(model.rowCount())]


def test_a_prepared_reset_shows_what_reset_shows(qapp) -> None:
    items = [Item(k, "ab"[k % 2], Decimal(k % 7)) for k in range(50)]
    plain, prepared = Items(lambda r: r.key), Items(lambda r: r.key)
    plain.reset(items)
    prepared.apply_reset(prepared.prepare_reset(items))
    assert _shown(prepared) == _shown(plain)
    # The order changed between preparing and applying: applied in the new order.
    ready = prepared.prepare_reset(items[:30])
    prepared.sort(1, Qt.SortOrder.DescendingOrder)
    prepared.apply_reset(ready)
    plain.sort(1, Qt.SortOrder.DescendingOrder)
    plain.reset(items[:30])  # what a reset after the sort shows
    assert _shown(prepared) == _shown(plain)
    assert prepared.row_of(items[0].key) == plain.row_of(items[0].key)


def test_a_big_book_loads_and_marks_a_vanished_position(make_app, qloop) -> None:
    size = BIG_TABLE + 500
    state = build_scale(size, accounts=3)
    with SimulatorThread(None, state=state) as sim:
        app = make_app(sim.port)
        w = app.window
        gone = sorted(state.holdings)[7]

        async def scenario() -> None:
            await app.start()
            await eventually(lambda: w.cache_model.rowCount() == size, 60)
            await eventually(lambda: w.broker_model.rowCount() == size, 30)
            sim.remove_position(*gone)
            await app.controller.runtime.service.sync_positions()

            def marked() -> bool:
                row = w.cache_model.row_of(gone)
                if row is None:
                    return False
                tip = w.cache_model.data(w.cache_model.index(row, 0), Qt.ItemDataRole.ToolTipRole)
                return bool(tip) and "Missing at broker" in tip

            await eventually(marked, 30)
            await eventually(lambda: app.controller.state.missing == 1, 10)

        qloop.run_until_complete(asyncio.wait_for(scenario(), 120))
