"""Differences: a real ledger (synced from one simulator) against a real broker client (another
simulator whose book lost ES and holds less AAPL) — the presenter marks both disagreements."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt

from app.db import repository
from app.domain.connection import ConnectionState, ConnectionStatus
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.ui.palette import colours_for
from app.ui.presenters.differences import Differences
from tests.ui.conftest import eventually
from tests.ui.presenters.conftest import ACCOUNT, D, book

AAPL = (ACCOUNT, c.AAPL.con_id)
MSFT = (ACCOUNT, c.MSFT.con_id)
ES = (ACCOUNT, c.ES.con_id)


def test_marks_a_missing_position_and_a_quantity_difference(make_parts, qloop):
    with SimulatorThread(None, state=book()) as first:
        seed = make_parts(first.port)

        async def seed_ledger():
            await seed.start_syncing()
            await eventually(lambda: seed.runtime.db.run_sync(repository.last_success))
            await seed.stop()

        qloop.run_until_complete(asyncio.wait_for(seed_ledger(), 30))

    with SimulatorThread(None, state=book(aapl=D(60), es=False)) as second:
        parts = make_parts(second.port)
        w, state = parts.window, parts.state
        colours = colours_for(w.palette())
        repaints: list[int] = []
        differences = Differences(
            w, state, parts.tasks, lambda: colours, lambda: repaints.append(state.missing)
        )

        async def scenario():
            # The ledger as the seed left it; the broker only (no sync rewrites the ledger).
            cached = [p for p in await parts.runtime.reader.positions() if p.is_open]
            assert {p.key for p in cached} == {AAPL, MSFT, ES}
            await parts.runtime.first_connection()
            await eventually(lambda: len(parts.runtime.broker.live_positions()) == 2)
            w.cache_model.reset(cached)
            w.broker_model.reset(parts.runtime.broker.live_positions())

            # Connected, but the broker side not fully loaded yet: nothing is "missing" yet.
            state.status = ConnectionStatus(ConnectionState.CONNECTED, "connected")
            differences.refresh()
            assert state.missing == 0
            assert not w.cache_model.data(
                w.cache_model.index(w.cache_model.row_of(ES), 0), Qt.ItemDataRole.ToolTipRole
            )

            state.broker_loaded = True
            differences.refresh()
            assert state.missing == 1

            def tooltip(key):
                index = w.cache_model.index(w.cache_model.row_of(key), 0)
                return w.cache_model.data(index, Qt.ItemDataRole.ToolTipRole) or ""

            assert tooltip(ES).startswith("Missing at broker: ")
            assert tooltip(AAPL).startswith("Quantity differs: The broker reports 60")
            assert not tooltip(MSFT)
            es_row = w.cache_model.index(w.cache_model.row_of(ES), 0)
            assert not w.cache_model.data(es_row, Qt.ItemDataRole.DecorationRole).isNull()
            # The "Δ broker" column: what TWS reports minus what the ledger holds.
            delta = w.cache_model.DIFFERENCE_AT
            aapl_delta = w.cache_model.index(w.cache_model.row_of(AAPL), delta)
            assert w.cache_model.data(aapl_delta, Qt.ItemDataRole.DisplayRole) == "-40"
            assert w.broker_count.text() == "2 positions"
            assert w.cache_count.text() == "3 open"

            # Offline: the broker side's marks and its Δ column go, the count says so.
            state.status = ConnectionStatus(ConnectionState.DISCONNECTED, "offline")
            differences.refresh()
            assert state.missing == 0 and not tooltip(AAPL)
            assert w.cache_model.data(aapl_delta, Qt.ItemDataRole.DisplayRole) == ""
            assert w.broker_count.text() == "offline"

        qloop.run_until_complete(asyncio.wait_for(scenario(), 30))
