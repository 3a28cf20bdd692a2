"""Desktop notifications in the window, against the simulator: each kind once per new condition.

Offscreen there is no system tray, so alerts land in the status bar; `notifier.shown` records
every one. Scenarios run on the qasync loop (tests/ui/conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from PySide6.QtWidgets import QSystemTrayIcon

from app.domain.connection import ConnectionState
from app.domain.values import SyncStatus
from app.notify import AlertKind
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from tests.ui.conftest import eventually
from tests.ui.test_window import ACCOUNT, book

MARKET_HOURS = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
SATURDAY = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def alerts(app, kind):
    return [a for a in app.controller.notifier.shown if a.kind is kind]


async def started(app):
    await app.start()
    service = app.controller.runtime.service
    await eventually(lambda: service.last_result is not None and not service.running, 15)
    await app.controller.notifier.idle()


async def sync_now(app):
    """Sync now (the button), wait for its result and for the notifier to judge it."""
    service = app.controller.runtime.service
    await eventually(lambda: app.window.sync_button.isEnabled() and not service.running)
    before = service.last_result
    app.window.sync_button.click()
    await eventually(lambda: service.last_result is not before and not service.running, 15)
    await app.controller.notifier.idle()
    return service.last_result


def test_a_missing_position_is_notified_once_per_new_warning(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)
        notifier = app.controller.notifier

        async def scenario():
            await started(app)
            assert not QSystemTrayIcon.isSystemTrayAvailable() and notifier.tray is None
            assert notifier.shown == []

            sim.remove_position(ACCOUNT, c.ES.con_id)
            for _ in range(3):  # the warning stays; it is told once
                assert (await sync_now(app)).ok
            (alert,) = alerts(app, AlertKind.MISSING)
            assert alert.title == "A position is missing at IB" and "ES" in alert.message
            assert alert.title in app.window.statusBar().currentMessage()  # no tray: status bar

            # Switched off in the settings (applied live): a new warning is not told…
            runtime = app.controller.runtime
            off = runtime.requested.model_copy(update={"notify_missing": False})
            await app.controller.apply_settings(off)
            sim.remove_position(ACCOUNT, c.MSFT.con_id)
            await sync_now(app)
            assert len(alerts(app, AlertKind.MISSING)) == 1
            # …and switching it on again does not replay it; the next new one is told.
            await app.controller.apply_settings(off.model_copy(update={"notify_missing": True}))
            await sync_now(app)
            assert len(alerts(app, AlertKind.MISSING)) == 1
            sim.remove_position(ACCOUNT, c.AAPL.con_id)
            await sync_now(app)
            await sync_now(app)
            _first, second = alerts(app, AlertKind.MISSING)
            assert "AAPL" in second.message and "MSFT" not in second.message
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))

        # The next start: warnings already in the ledger are the baseline, not news.
        again = make_app(sim.port)

        async def restart():
            await started(again)
            await sync_now(again)
            assert again.controller.notifier.shown == []
            await again.stop()

        qloop.run_until_complete(asyncio.wait_for(restart(), 60))


def test_failing_syncs_are_notified_once_at_the_threshold(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port, ib_timeout=1.0, notify_failure_threshold=2)

        async def scenario():
            await started(app)
            # Every snapshot incomplete: no positionEnd (a missing execDetailsEnd no longer
            # fails a sync since issue 16: positions commit, fills marked unavailable).
            sim.set_faults(withhold_end={"positions"})
            assert (await sync_now(app)).status is SyncStatus.FAILED
            assert alerts(app, AlertKind.SYNC_FAILURES) == []
            await sync_now(app)
            (alert,) = alerts(app, AlertKind.SYNC_FAILURES)
            assert "2 syncs failed" in alert.message
            await sync_now(app)
            assert len(alerts(app, AlertKind.SYNC_FAILURES)) == 1  # still the same streak

            sim.set_faults(withhold_end=set())
            assert (await sync_now(app)).ok  # re-armed
            sim.set_faults(withhold_end={"positions"})
            await sync_now(app)
            await sync_now(app)
            assert len(alerts(app, AlertKind.SYNC_FAILURES)) == 2
            assert {a.kind for a in app.controller.notifier.shown} == {AlertKind.SYNC_FAILURES}
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 90))


def test_an_unexpected_disconnect_in_market_hours_is_notified_once_per_drop(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)
        notifier = app.controller.notifier
        notifier.clock = lambda: MARKET_HOURS

        def state():
            return app.controller.state.status.state

        async def scenario():
            await started(app)
            assert state() is ConnectionState.CONNECTED

            sim.drop_connections()
            await eventually(lambda: alerts(app, AlertKind.DISCONNECT))
            await eventually(lambda: state() is ConnectionState.CONNECTED, 30)
            (drop,) = alerts(app, AlertKind.DISCONNECT)  # retries were the same drop
            assert drop.title == "Disconnected from TWS"

            sim.push_error(1100)  # TWS lost IB
            await eventually(lambda: len(alerts(app, AlertKind.DISCONNECT)) == 2)
            assert alerts(app, AlertKind.DISCONNECT)[1].title == "TWS lost its connection to IB"
            sim.push_error(1102)
            await eventually(lambda: state() is ConnectionState.CONNECTED, 30)

            notifier.clock = lambda: SATURDAY  # outside market hours: no notification
            sim.drop_connections()
            await eventually(lambda: state() is not ConnectionState.CONNECTED)
            await eventually(lambda: state() is ConnectionState.CONNECTED, 30)
            assert len(alerts(app, AlertKind.DISCONNECT)) == 2

            notifier.clock = lambda: MARKET_HOURS
            # Let the resync after reconnecting finish: a run ending during stop() would leave
            # the window a reload to do after the loop is gone.
            await eventually(lambda: not app.controller.runtime.service.running, 15)
            await app.stop()  # the app's own disconnect is no news
            assert len(alerts(app, AlertKind.DISCONNECT)) == 2

        qloop.run_until_complete(asyncio.wait_for(scenario(), 90))


def test_a_realized_pnl_difference_from_ib_is_notified_once(make_app, qloop):
    with SimulatorThread(None, state=book()) as sim:
        # Fills are synced by Sync now only, so IB's figure can be changed before the sync.
        app = make_app(sim.port, sync_on_trade=False, sync_on_position_update=False)

        def sell_with_ib_pnl_off_by(shares, amount):
            execution = sim.fill(ACCOUNT, c.AAPL, -shares, "160", commission=Decimal("1.00"))

            def skew(state):
                stored = state.executions[execution.exec_id]
                stored.realized_pnl = stored.realized_pnl + Decimal(amount)

            sim.call(skew)

        async def scenario():
            await started(app)
            sell_with_ib_pnl_off_by(10, "5")
            result = await sync_now(app)
            assert result.ok and result.pnl_mismatches
            (alert,) = alerts(app, AlertKind.PNL_MISMATCH)
            assert "AAPL" in alert.message and ACCOUNT in alert.message
            await sync_now(app)
            await sync_now(app)
            assert len(alerts(app, AlertKind.PNL_MISMATCH)) == 1
            sell_with_ib_pnl_off_by(20, "-3")
            await sync_now(app)
            assert len(alerts(app, AlertKind.PNL_MISMATCH)) == 2
            await app.stop()

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_the_settings_dialog_switches_each_kind(qloop):
    from app.settings import Settings
    from app.ui.dialogs.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings())
    try:
        assert dialog.notify_missing.isChecked() and dialog.failure_threshold.value() == 3
        dialog.notify_missing.setChecked(False)
        dialog.notify_disconnect.setChecked(False)
        dialog.failure_threshold.setValue(5)
        dialog._check_and_accept()
        chosen = dialog.result_settings()
        assert not chosen.notify_missing and not chosen.notify_disconnect
        assert chosen.notify_sync_failures and chosen.notify_pnl_mismatch
        assert chosen.notify_failure_threshold == 5
    finally:
        dialog.deleteLater()


def test_the_settings_dialog_edits_the_tws_timezone(qloop):
    """The TWS login's zone is chosen in Settings…; an unknown name is refused, not saved."""
    from app.settings import Settings
    from app.ui.dialogs.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(tws_timezone="Europe/London"))
    try:
        assert dialog.tws_timezone.currentText() == "Europe/London"
        dialog.tws_timezone.setCurrentText("Mars/Olympus")
        dialog._check_and_accept()
        assert dialog.result() != dialog.DialogCode.Accepted
        assert "tws_timezone" in dialog.error.text()
        dialog.tws_timezone.setCurrentText("Asia/Tokyo")
        dialog._check_and_accept()
        assert dialog.result_settings().tws_timezone == "Asia/Tokyo"
    finally:
        dialog.deleteLater()
