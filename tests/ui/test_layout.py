"""What a trader opens the window for is visible at the default size, without scrolling (issue 19).

Regression: at 1280x800 the ledger side's Unrealized was cut off and Realized off-screen; the
broker side stopped at Mkt value.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import pytest
from PySide6.QtWidgets import QTableView

from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from tests.ui.conftest import eventually, free_port

D = Decimal

BROKER_FIRST = ("Account", "Symbol", "Qty", "Avg price", "Last", "Unrealized")
LEDGER_FIRST = (
    "Account", "Symbol", "Qty", "Δ broker", "Avg price", "Last", "Unrealized", "Realized",
)  # fmt: skip


def wide_book() -> SimState:
    """Long account codes, an option, a future, big and negative amounts: the widest cells."""
    state = SimState()
    state.add_account("DU1234567", "USD")
    state.add_account("U9876543", "USD")
    state.set_position("DU1234567", c.AAPL, D(12000), D("156.4642"), D("189.1134"))
    state.set_position("DU1234567", c.AAPL_C200, D(-50), D("3.5065"), D("4.10"))
    state.set_position("DU1234567", c.ES, D(-20), D(250000), D("4989.8625"))
    state.set_position("U9876543", c.MSFT, D("1234.5678"), D(310), D(415))
    return state


def _check_visible(view: QTableView, titles: tuple[str, ...], *, cells: bool = True) -> None:
    """Every column named is inside the viewport, and (`cells`) wide enough for its cells'
    text."""
    model = view.model()
    header = view.horizontalHeader()
    shown = [model.headerData(i, header.orientation()) for i in range(model.columnCount())]
    width = view.viewport().width()
    problems = []
    for title in titles:
        logical = shown.index(title)
        left = header.sectionViewportPosition(logical)
        right = left + header.sectionSize(logical)
        if not (left >= 0 and right <= width):
            problems.append(f"{title} at {left}-{right}, viewport {width}")
        if cells and model.rowCount():
            # The cells' text fits too (a column inside the viewport but too narrow is cut).
            needed = view.sizeHintForColumn(logical)
            if needed > header.sectionSize(logical) + 1:
                problems.append(f"{title} needs {needed} px, has {header.sectionSize(logical)}")
    assert not problems, f"{view.objectName()}: {problems}"
    assert view.horizontalScrollBar().value() == 0


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
@pytest.mark.parametrize("book", ["wide", "scale-300"])
def test_the_columns_a_trader_reads_first_fit_without_scrolling(make_app, qloop, size, book):
    """`wide`: the widest cells; `scale-300`: enough rows for a vertical scroll bar, which
    takes its width from the viewport (a screenshot of 20,000 rows showed Realized clipped)."""
    rows = 4 if book == "wide" else 300
    scenario_name, state = (None, wide_book()) if book == "wide" else (book, None)
    with SimulatorThread(scenario_name, state=state) as sim:
        app = make_app(sim.port)
        w = app.window

        async def scenario():
            w.resize(*size)
            await app.start()
            await eventually(lambda: app.controller.state.last_synced is not None, 20)
            await eventually(
                lambda: w.broker_model.rowCount() == rows and w.cache_model.rowCount() == rows
            )
            await asyncio.sleep(0.3)  # the layout settles after the rows arrive
            assert (w.width(), w.height()) == size
            # The scale book's made-up option symbols ("S00123 271217C350") are longer than
            # real ones: there only the columns' places are checked (the tooltip has it all).
            _check_visible(w.broker_table, BROKER_FIRST, cells=book == "wide")
            _check_visible(w.cache_table, LEDGER_FIRST, cells=book == "wide")
            await app.stop()  # before the simulator goes: no reconnecting left behind

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_the_difference_column_shows_broker_minus_ledger(make_app, qloop):
    port = free_port()
    with SimulatorThread(None, state=wide_book(), port=port) as sim:
        app = make_app(port)
        w = app.window
        model = w.cache_model
        column = model.DIFFERENCE_AT

        async def scenario():
            await app.start()
            await eventually(lambda: app.controller.state.last_synced is not None, 20)
            await eventually(lambda: w.broker_model.rowCount() == 4)
            key = ("DU1234567", c.AAPL.con_id)
            row = model.row_of(key)
            assert model.data(model.index(row, column)) == ""  # they agree
            # The broker's position moves; until the ledger syncs, the difference shows.
            options = app.runtime.service.options
            app.runtime.service.apply_options(
                replace(options, on_position_update=False, on_trade=False)
            )
            sim.set_position("DU1234567", c.AAPL, D(11900), D("156.4642"), D(189))
            await eventually(lambda: model.data(model.index(model.row_of(key), column)) == "-100")
            # The row is flagged now (an icon before the account): still nothing cut.
            await eventually(lambda: model.data(model.index(model.row_of(key), 0), 1) is not None)
            _check_visible(w.cache_table, LEDGER_FIRST)
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
