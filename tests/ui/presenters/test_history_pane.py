"""HistoryPane over a real ledger: a lifecycle's events, fills and open lots; what the user saw
(its last event) kept until another is shown; all cleared on None."""

from __future__ import annotations

import asyncio

from app.db import repository
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.ui.charts.feed import ChartsFeed
from app.ui.presenters.history_pane import HistoryPane
from tests.ui.conftest import eventually
from tests.ui.presenters.conftest import ACCOUNT, D, book

AAPL = (ACCOUNT, c.AAPL.con_id)
MSFT = (ACCOUNT, c.MSFT.con_id)


def test_shows_a_lifecycle_then_clears(make_parts, qloop):
    with SimulatorThread(None, state=book()) as sim:
        parts = make_parts(sim.port)
        w = parts.window
        db = parts.runtime.db
        history = HistoryPane(w, parts.holder, ChartsFeed(w, lambda: parts.runtime, parts.tasks))

        def lifecycle(key):
            return db.run_sync(repository.lifecycles_for, [key])[0]

        async def scenario():
            await parts.start_syncing()
            await eventually(lambda: db.run_sync(repository.last_success))
            sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D(1))  # a partial close
            await eventually(lambda: lifecycle(AAPL).quantity == 60, 15)
            aapl = lifecycle(AAPL)
            events = db.run_sync(repository.events, aapl.id)
            assert len(events) >= 2  # opened, then reduced by the fill

            await history.show(aapl)
            assert "AAPL" in w.history_title.text() and "open" in w.history_title.text()
            assert w.events_model.rowCount() == len(events)
            assert w.fills_model.rowCount() == 1
            assert w.lots_model.rowCount() >= 1  # the 60 shares still held
            assert await history.last_event_seen(aapl) == events[-1].id

            # Another fill is booked while the pane still shows the old history: what the user
            # saw is what Mark closed compares against, not the ledger's newest event.
            sim.fill(ACCOUNT, c.AAPL, -10, "161", commission=D(1))
            await eventually(lambda: lifecycle(AAPL).quantity == 50, 15)
            newest = db.run_sync(repository.events, aapl.id)[-1].id
            assert newest != events[-1].id
            assert await history.last_event_seen(aapl) == events[-1].id
            # A lifecycle the pane does not show is read now.
            msft = lifecycle(MSFT)
            msft_events = db.run_sync(repository.events, msft.id)
            assert await history.last_event_seen(msft) == msft_events[-1].id

            await history.show(None)
            assert w.history_title.text().startswith("Select a position")
            assert (w.events_model.rowCount(), w.fills_model.rowCount()) == (0, 0)
            assert w.lots_model.rowCount() == 0
            assert await history.last_event_seen(aapl) == newest

        qloop.run_until_complete(asyncio.wait_for(scenario(), 45))
