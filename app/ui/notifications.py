"""Desktop notifications: AlertTracker's alerts in the system tray (or the status bar).

The decisions (what is new, what is switched off) are app.notify's, without Qt; this is the thin
part that listens to the runtime and shows them. Where there is no system tray (offscreen, some
Linux desktops) an alert goes to the window's status bar instead, and the taskbar entry is
flashed either way. Every alert shown is kept in `shown`, newest last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtWidgets import QApplication, QMainWindow, QSystemTrayIcon

from app.domain.connection import ConnectionStatus
from app.notify import Alert, AlertTracker, alert_options
from app.runtime import Runtime
from app.sync.results import SyncResult
from app.sync.tasks import TaskGroup
from app.ui.resources import app_icon

log = logging.getLogger(__name__)

TRAY_MESSAGE_MS = 15_000
STATUS_BAR_MS = 60_000


class DesktopNotifier:
    """Listens to one runtime at a time (`attach` / `detach`) and shows what is new."""

    def __init__(self, window: QMainWindow, clock: Callable[[], datetime] | None = None) -> None:
        self.window = window
        self.tracker = AlertTracker()
        self.shown: list[Alert] = []
        self.clock = clock or (lambda: datetime.now(UTC))
        """The time that decides market hours (tests set it)."""
        self._runtime: Runtime | None = None
        self._tasks = TaskGroup("notify")
        self._reads: set[asyncio.Task[None]] = set()
        self._reading = asyncio.Lock()  # missing-at-broker reads apply in the order they began
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), window)
            self.tray.setToolTip(window.windowTitle())
            self.tray.messageClicked.connect(self.on_tray_message_clicked)
            self.tray.show()

    def attach(self, runtime: Runtime) -> None:
        """Follow `runtime`'s connection and sync results; its current warnings are no news."""
        self._runtime = runtime
        self.tracker.reset_missing_baseline()
        runtime.broker.on_status(lambda status: self._on_status(runtime, status))
        runtime.service.on_result(lambda result: self._on_result(runtime, result))
        self._read_missing(runtime)

    async def detach(self) -> None:
        """Stop following the runtime before the app disconnects it (that drop is no news)."""
        self.tracker.expect_disconnect()
        self._runtime = None
        await self._tasks.cancel_all()

    def on_tray_message_clicked(self) -> None:
        """Bring the window forward."""
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()

    # ------------------------------------------------------------------ listeners
    def _current(self, runtime: Runtime) -> bool:
        if runtime is not self._runtime:
            return False  # a runtime replaced or being stopped: its news is not news
        self.tracker.options = alert_options(runtime.settings)  # switches apply at once
        return True

    def _on_status(self, runtime: Runtime, status: ConnectionStatus) -> None:
        if self._current(runtime):
            self.show(self.tracker.observe_status(status, self.clock()))

    def _on_result(self, runtime: Runtime, result: SyncResult) -> None:
        if not self._current(runtime):
            return
        self.show(self.tracker.observe_result(result))
        # New warnings come from full syncs (or show in `missing`); a full sync also clears
        # reappeared ones, so the next disappearance is news again.
        if result.ok and (result.missing or not result.selective):
            self._read_missing(runtime)

    def _read_missing(self, runtime: Runtime) -> None:
        task = self._tasks.spawn(self._missing_now(runtime), "missing-at-broker")
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def idle(self) -> None:
        """Wait until every ledger read started so far has been judged (tests, shutdown)."""
        while self._reads:
            await asyncio.wait(set(self._reads))

    async def _missing_now(self, runtime: Runtime) -> None:
        async with self._reading:
            warnings = await runtime.reader.missing_at_broker()
            if self._current(runtime):
                self.show(self.tracker.observe_missing(warnings))

    # ------------------------------------------------------------------ showing
    def show(self, alerts: list[Alert]) -> None:
        """Show each alert (tray balloon, or the status bar) and remember it."""
        for alert in alerts:
            self.shown.append(alert)
            log.info("notification (%s): %s — %s", alert.kind.value, alert.title, alert.message)
            if self.tray is not None:
                self.tray.showMessage(
                    alert.title,
                    alert.message,
                    QSystemTrayIcon.MessageIcon.Warning,
                    TRAY_MESSAGE_MS,
                )
            else:
                self.window.statusBar().showMessage(
                    f"⚠ {alert.title}: {alert.message}", STATUS_BAR_MS
                )
            QApplication.alert(self.window)
