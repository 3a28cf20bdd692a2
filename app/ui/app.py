"""Start the window: QApplication, the qasync loop, the controller; until the window closes.

QT_API must name PySide6 before qasync is imported (it prefers PyQt6 when both exist), and the
qasync loop must be the policy's loop (ib_insync finds its loop there) — STYLE.md traps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

os.environ.setdefault("QT_API", "pyside6")

import qasync
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app.db.errors import DatabaseError
from app.runtime import Runtime, heap_friendly_gc
from app.settings import APP_NAME, Settings
from app.ui.arenas import limit_malloc_arenas
from app.ui.controller import WindowController
from app.ui.main_window import MainWindow
from app.ui.resources import app_icon

log = logging.getLogger(__name__)

EXIT_DATABASE = 4


def application() -> QApplication:
    """The process's one QApplication."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    qt_app = QApplication(sys.argv[:1])
    qt_app.setApplicationName("Position Sync")
    qt_app.setOrganizationName(APP_NAME)
    qt_app.setWindowIcon(app_icon())
    return qt_app


def window_state_store() -> QSettings:
    """Where geometry and column layouts are remembered (not user settings)."""
    return QSettings(APP_NAME, "window")


WINDOW_GC_THRESHOLDS = (5_000, 2, 1_000_000_000)
"""The collector's thresholds while the window runs (app.runtime.GC_THRESHOLDS is for syncing
without one). Collections hold the GIL, so each pauses the window: young collections of at
most ~15,000 objects stay within a few milliseconds each (with the headless thresholds,
collections of 100,000 young objects stalled the Qt loop for over 100 ms during a
20,000-position sync, tests/bench). Whole-heap ones never start by themselves: app.ui.heap runs
them when nobody is looking."""


GIL_SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits (Python's default: 0.005).

Every call from Qt into Python on the GUI thread has to take the GIL; while the database thread
or a worker runs Python (reading 20,000 rows back, comparing the tables), each such call waited
up to 5 ms, and one pass of the event loop makes several: Qt-loop stalls of 60-90 ms during a
20,000-position sync, against 20-30 ms at 1 ms (tests/bench)."""


def run_window(
    settings: Settings,
    *,
    demo: bool = False,
    quit_after: float | None = None,
    database_url: str | None = None,
) -> int:
    """Show the window until it is closed; returns the process exit code.

    `database_url` replaces the settings' ledger for this run (`--demo`: the demo's own)."""
    limit_malloc_arenas()  # before Qt and the database start their threads
    switch = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        with heap_friendly_gc(WINDOW_GC_THRESHOLDS):
            return _run_window(
                settings, demo=demo, quit_after=quit_after, database_url=database_url
            )
    finally:
        sys.setswitchinterval(switch)


def _run_window(
    settings: Settings, *, demo: bool, quit_after: float | None, database_url: str | None
) -> int:
    qt_app = application()
    title = "Position Sync — DEMO (demo ledger, made-up positions)" if demo else "Position Sync"
    # Paint first, connect after: the window shows (and says it is reading the ledger) before
    # the ledger opens; the broker stack is imported and started only after the cached rows
    # are painted (WindowController.start), the local API after that.
    window = MainWindow(title)
    store = window_state_store()
    window.restore_state(store)
    window.show()
    qt_app.processEvents()
    try:
        runtime = Runtime.open(
            settings,
            demo=demo,
            database_url=database_url,
            attach=False,
            command="position-sync window",
        )
    except DatabaseError as exc:
        QMessageBox.critical(window, "Position Sync — database", str(exc))
        print(f"position-sync: database error: {exc}", file=sys.stderr)
        window.close()
        return EXIT_DATABASE

    loop = qasync.QEventLoop(qt_app)
    asyncio.set_event_loop(loop)
    controller = WindowController(window, runtime, demo=demo)
    closed: asyncio.Future[None] = loop.create_future()

    def on_window_closing() -> None:
        if not closed.done():
            closed.set_result(None)

    window.closing.connect(on_window_closing)
    # The loop must outlive the window: shutting down (stop syncing, close the ledger) still
    # needs it after the last window closes.
    qt_app.setQuitOnLastWindowClosed(False)
    if quit_after is not None:
        QTimer.singleShot(int(quit_after * 1000), window.close)

    async def main() -> None:
        api = None
        try:
            await controller.start()
            if controller.runtime.settings.api_enabled:
                from app.ui.local_api import start_api  # aiohttp: only when the API is on

                api = await start_api(controller)
            await closed
        finally:
            window.save_state(store)
            if api is not None:
                await api.stop()
            await controller.stop()

    try:
        loop.run_until_complete(main())
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(None)
        loop.close()
    return 0
