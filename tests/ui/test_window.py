"""The window against the simulator: offline start, going live, Sync now, a vanished position,
Mark closed, the ticking banner, settings applied live — real widgets, offscreen."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from app.db import repository
from app.domain.values import CloseReason, EventKind, PositionStatus, SyncTrigger
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.sim.state import SimState
from app.ui.banner import Level
from app.ui.dialogs.mark_closed import MarkClosedDialog
from tests.ui.conftest import eventually, free_port

D = Decimal
ACCOUNT = "DU7000007"


def book() -> SimState:
    state = SimState()
    state.add_account(ACCOUNT, "USD")
    state.set_position(ACCOUNT, c.AAPL, D(100), D(150), D(152))
    state.set_position(ACCOUNT, c.MSFT, D("0.3"), D(310), D(415))
    state.set_position(ACCOUNT, c.ES, D(-1), D(250000), D(5010))
    return state


def visible_dialog(kind: type) -> object | None:
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, kind) and widget.isVisible():
            return widget
    return None


def row_of(model, key) -> int:
    position = model.row_of(key)
    assert position is not None, f"{key} not shown"
    return position


def test_offline_start_then_live_then_resolve_a_vanished_position(make_app, qloop):
    port = free_port()
    # Yesterday's cache: synced once from a simulator that is gone now.
    with SimulatorThread(None, state=book()) as first:
        seed = make_app(first.port)

        async def seed_cache():
            await seed.start()
            await eventually(lambda: seed.controller.state.last_synced is not None)
            await seed.stop()

        qloop.run_until_complete(asyncio.wait_for(seed_cache(), 30))

    app = make_app(port)
    w = app.window
    sim_thread: list[SimulatorThread] = []

    async def scenario():
        await app.start()
        # Offline: cached positions painted at once, the banner says how old they are.
        assert w.cache_model.rowCount() == 3 and w.broker_model.rowCount() == 0
        await eventually(lambda: w.banner.state.level is Level.OFFLINE)
        assert "Offline — TWS not reachable" in w.banner.text()
        assert "cached positions from" in w.banner.text()
        assert visible_dialog(QMessageBox) is None  # a closed TWS is not an error dialog

        # TWS starts: the window goes live on its own.
        sim_thread.append(SimulatorThread(None, state=book(), port=port).start())
        sim = sim_thread[0].sim
        await eventually(lambda: w.banner.state.level is Level.LIVE, 15)
        assert w.banner.text().startswith("Live — synced")
        await eventually(lambda: w.broker_model.rowCount() == 3)

        # Sync now (the button) commits a manual run, shown in the sync log.
        runs_before = len(app.runtime.db.run_sync(repository.sync_runs))
        w.sync_button.click()
        await eventually(lambda: len(app.runtime.db.run_sync(repository.sync_runs)) > runs_before)
        newest = app.runtime.db.run_sync(repository.sync_runs)[0]
        assert newest.trigger is SyncTrigger.MANUAL
        await eventually(lambda: w.runs_model.rowCount() == runs_before + 1)

        # ES vanishes without fills: a full sync warns, colour + icon + tooltip say why.
        sim.remove_position(ACCOUNT, c.ES.con_id)
        w.sync_button.click()
        es_key = (ACCOUNT, c.ES.con_id)
        cache = w.cache_model

        def es_warned():
            row = cache.row_of(es_key)
            return row is not None and cache.get(es_key).missing_since is not None

        await eventually(es_warned)
        index = cache.index(row_of(cache, es_key), 0)
        assert "Missing at broker" in cache.data(index, Qt.ItemDataRole.ToolTipRole)
        assert cache.data(index, Qt.ItemDataRole.BackgroundRole) is not None
        assert not cache.data(index, Qt.ItemDataRole.DecorationRole).isNull()
        await eventually(lambda: "1 position missing at broker" in w.banner.text())
        assert w.banner.state.level is Level.WARNING

        # Mark closed resolves it: exit price prefilled, a note, MARKED_CLOSED in the ledger.
        w.cache_table.selectRow(row_of(cache, es_key))
        assert w.mark_closed_button.isEnabled()
        w.mark_closed_button.click()
        dialog = await eventually(lambda: visible_dialog(MarkClosedDialog))
        assert dialog.price.text() == "5010"  # the last known price
        dialog.note.setText("closed at another broker")
        dialog.accept()

        def closed_in_ledger():
            rows = app.runtime.db.run_sync(repository.lifecycles_for, [es_key])
            return rows and rows[0].status is PositionStatus.CLOSED

        await eventually(closed_in_ledger)
        (es,) = app.runtime.db.run_sync(repository.lifecycles_for, [es_key])
        assert es.close_reason is CloseReason.MANUAL
        assert es.realized_pnl == D(-10) * 50  # short 1 @ 5000, closed @ 5010, ×50
        kinds = [e.kind for e in app.runtime.db.run_sync(repository.events, es.id)]
        assert kinds[-1] is EventKind.MARKED_CLOSED
        await eventually(lambda: cache.row_of(es_key) is None)
        assert w.closed_model.get(es.id) is not None
        await eventually(lambda: "missing at broker" not in w.banner.text())

        # A position the broker still reports: Mark closed asks first; "No" changes nothing.
        aapl_key = (ACCOUNT, c.AAPL.con_id)
        w.cache_table.selectRow(row_of(cache, aapl_key))
        w.mark_closed_button.click()
        question = await eventually(lambda: visible_dialog(QMessageBox))
        assert "still reports" in question.text() or "reports 100" in question.text()
        question.button(QMessageBox.StandardButton.No).click()
        await asyncio.sleep(0.2)
        assert visible_dialog(MarkClosedDialog) is None
        assert cache.get(aapl_key).status is PositionStatus.OPEN

        # The banner's age ticks on its own.
        first_text = w.banner.text()
        await eventually(lambda: w.banner.text() != first_text, 4)

    try:
        qloop.run_until_complete(asyncio.wait_for(scenario(), 90))
    finally:
        for thread in sim_thread:
            assert not set(thread.sim.received_ids()) & {3, 4, 21, 58}
            thread.stop()


def test_settings_apply_without_restart(make_app, qloop, tmp_path):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)

        async def scenario():
            await app.start()
            await eventually(lambda: app.controller.state.last_synced is not None)
            faster = app.runtime.requested.model_copy(update={"sync_interval": 0.3})
            await app.controller.apply_settings(faster)
            assert app.runtime.service.options.interval == 0.3
            await eventually(
                lambda: any(
                    r.trigger is SyncTrigger.PERIODIC
                    for r in app.runtime.db.run_sync(repository.sync_runs)
                ),
                5,
            )
            # A new database location applies at once: the window shows the new (empty) ledger.
            other = f"sqlite:///{tmp_path / 'other.sqlite'}"
            moved = faster.model_copy(update={"database_url": other, "sync_interval": 3600})
            await app.controller.apply_settings(moved)
            assert app.controller.runtime.db.location.endswith("other.sqlite")
            assert app.window.database_label.text().endswith("other.sqlite")
            await eventually(lambda: app.window.cache_model.rowCount() == 3, 15)

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_every_model_passes_qtmodeltester(make_app, qloop, qtmodeltester):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)
        sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D(1))

        async def scenario():
            await app.start()
            await eventually(lambda: app.window.broker_model.rowCount() == 3)
            app.window.cache_table.selectRow(0)
            await eventually(lambda: app.window.events_model.rowCount() > 0)

        qloop.run_until_complete(asyncio.wait_for(scenario(), 30))
        # Stop the stack first: the tester must not see resets made while shutting down.
        qloop.run_until_complete(app.stop())
        w = app.window
        for model in (
            w.broker_model,
            w.cache_model,
            w.closed_model,
            w.events_model,
            w.fills_model,
            w.runs_model,
        ):
            qtmodeltester.check(model, force_py=True)
            model.sort(3, Qt.SortOrder.DescendingOrder)
            qtmodeltester.check(model, force_py=True)
