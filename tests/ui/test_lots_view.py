"""The history pane shows the selected lifecycle's open FIFO lots and each event's FIFO figure
(issue 17 item 4): real widgets offscreen, a real SQLite ledger, the simulator through real
ib_insync."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from PySide6.QtCore import Qt

from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from tests.ui.conftest import eventually
from tests.ui.test_window import ACCOUNT, book, row_of

D = Decimal
DISPLAY = Qt.ItemDataRole.DisplayRole


def test_history_shows_open_lots_and_fifo_beside_average(make_app, qloop, qtmodeltester):
    """100 AAPL held before the app (IB's average 150), then a buy of 50 @ 160 (1.00): two
    lots — 100 from IB's average (≈ 15,000.00, estimated) and 50 from the fill (8,001.00,
    exact, 160.02 a share)."""
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)
        sim.fill(ACCOUNT, c.AAPL, 50, "160", commission=D(1))
        w = app.window
        key = (ACCOUNT, c.AAPL.con_id)

        async def scenario():
            await app.start()
            await eventually(lambda: w.cache_model.row_of(key) is not None, 15)
            await eventually(lambda: w.cache_model.get(key).quantity == 150, 15)
            w.cache_table.selectRow(row_of(w.cache_model, key))
            await eventually(lambda: w.lots_model.rowCount() == 2, 15)

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
        qloop.run_until_complete(app.stop())
        model = w.lots_model
        rows = [
            [model.data(model.index(r, col), DISPLAY) for col in range(model.columnCount())]
            for r in range(model.rowCount())
        ]
        by_quantity = {row[1]: row for row in rows}
        held, bought = by_quantity["100"], by_quantity["50"]
        assert held[2].startswith("≈") and "15,000.00" in held[2]
        assert bought[2] == "8,001.00" and bought[3].startswith("160.02")
        titles = [
            w.events_model.headerData(i, Qt.Orientation.Horizontal, DISPLAY)
            for i in range(w.events_model.columnCount())
        ]
        assert "FIFO realized" in titles
        qtmodeltester.check(model, force_py=True)
