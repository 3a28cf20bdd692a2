"""BrokerFeed over a real broker client and the simulator: live pushes coalesced into one
repaint, a whole-table refresh that waits for a reload, no repaint once stopping."""

from __future__ import annotations

import asyncio

from app.domain.connection import ConnectionState
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.ui.palette import colours_for
from app.ui.presenters.broker_feed import BROKER_VIEW_DELAY_MS, BrokerFeed
from app.ui.presenters.differences import Differences
from tests.ui.conftest import eventually
from tests.ui.presenters.conftest import ACCOUNT, D, book


def _feed(parts):
    colours = colours_for(parts.window.palette())
    differences = Differences(parts.window, parts.state, parts.tasks, lambda: colours, lambda: None)
    feed = BrokerFeed(
        parts.window, parts.holder, parts.state, parts.tasks, differences, lambda: None
    )
    parts.holder.on_hook(feed.hook)
    return feed


def test_a_burst_of_pushes_is_one_repaint(make_parts, qloop):
    with SimulatorThread(None, state=book()) as sim:
        parts = make_parts(sim.port, sync_on_position_update=False)
        feed = _feed(parts)
        model = parts.window.broker_model

        def quantity(contract):
            row = model.get((ACCOUNT, contract.con_id))
            return row.quantity if row is not None else None

        async def scenario():
            await parts.start_syncing()
            # Connected: the whole table is read once, and only then counts as loaded.
            await eventually(lambda: parts.state.status.state is ConnectionState.CONNECTED)
            await eventually(lambda: parts.state.broker_loaded and model.rowCount() == 3)
            await eventually(lambda: not feed.pending)
            before = model.revision
            # Three holdings change 50 ms apart, well inside one repaint delay (each pushes
            # position and portfolio rows): the table takes them in with one upsert.
            sim.set_position(ACCOUNT, c.AAPL, D(120))
            await asyncio.sleep(0.05)
            sim.set_position(ACCOUNT, c.MSFT, D(2))
            await asyncio.sleep(0.05)
            sim.set_position(ACCOUNT, c.ES, D(-3))
            await eventually(
                lambda: (
                    (quantity(c.AAPL), quantity(c.MSFT), quantity(c.ES)) == (D(120), D(2), D(-3))
                )
            )
            assert model.revision == before + 1
            await asyncio.sleep(2 * BROKER_VIEW_DELAY_MS / 1000)
            assert model.revision == before + 1  # nothing left over for a second repaint

        qloop.run_until_complete(asyncio.wait_for(scenario(), 30))


def test_a_whole_table_refresh_waits_for_the_reload(make_parts, qloop):
    with SimulatorThread(None, state=book()) as sim:
        parts = make_parts(sim.port)
        feed = _feed(parts)
        model = parts.window.broker_model

        async def scenario():
            await parts.start_syncing()
            await eventually(lambda: parts.state.broker_loaded and model.rowCount() == 3)
            await eventually(lambda: not feed.pending)
            model.reset([])
            parts.state.reloading = 1  # the ledger views are being reloaded
            feed.schedule(None)
            await asyncio.sleep(3 * BROKER_VIEW_DELAY_MS / 1000)
            assert model.rowCount() == 0 and feed.pending  # postponed, not dropped
            parts.state.reloading = 0
            await eventually(lambda: model.rowCount() == 3)

            # Stopping: pushes schedule nothing (the loop running the tasks is about to stop).
            feed.stop()
            feed.schedule(None)
            feed.schedule((ACCOUNT, c.AAPL.con_id))
            assert not feed.pending

        qloop.run_until_complete(asyncio.wait_for(scenario(), 30))


def test_a_repaint_due_while_the_loop_is_not_running_waits_for_it(make_parts, qloop):
    """Guards: "no running event loop" from a whole-table repaint whose timer fires in the Qt
    events qasync processes after its loop stopped (a CI failure)."""
    with SimulatorThread(None, state=book()) as sim:
        parts = make_parts(sim.port)
        feed = _feed(parts)
        model = parts.window.broker_model

        async def connected():
            await parts.start_syncing()
            await eventually(lambda: parts.state.broker_loaded and model.rowCount() == 3)
            await eventually(lambda: not feed.pending)
            model.reset([])

        qloop.run_until_complete(asyncio.wait_for(connected(), 30))
        # No loop runs now; the timer fires as it would in qasync's last processEvents.
        feed.schedule(None)
        feed._broker_timer.timeout.emit()
        assert feed.pending and model.rowCount() == 0  # postponed, not failed, not dropped

        async def later():
            await eventually(lambda: model.rowCount() == 3)

        qloop.run_until_complete(asyncio.wait_for(later(), 30))
