"""Screenshots of the demo for the README: live, with a discrepancy, offline, dark, the charts.

Run under a real X server (Xvfb), not offscreen, so the window is painted by the platform; the
window is the default 1280x800 (what must fit without scrolling, issue 19):

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python -m tests.ui.screenshots resources/screenshots

It takes about three minutes: the demo's vanishing position shows up after ~45 s, and the charts
wait for the demo's first partial close of the day. Name shots after the folder to take only
those: `live` (live, discrepancy, offline), `dark` (live under a dark palette), `charts` or
`estimates` (a few seconds, offline).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolTip

from app.domain.connection import ConnectionState
from app.runtime import Runtime
from app.settings import Settings
from app.ui.app import application
from app.ui.controller import WindowController
from app.ui.main_window import MainWindow
from app.ui.palette import dark_palette
from tests.ui.conftest import eventually
from tests.ui.demo_history import seed_history
from tests.ui.test_estimates import seed_three_bases

SIZE = (1280, 800)


async def take(out: Path, database: Path) -> None:
    runtime = Runtime.open(Settings(database_url=f"sqlite:///{database}"), demo=True)
    window = MainWindow("Position Sync — DEMO (demo ledger, made-up positions)")
    controller = WindowController(window, runtime, demo=True)
    window.resize(*SIZE)
    window.show()
    await controller.start()
    await eventually(lambda: controller.state.last_synced is not None, 30)
    await asyncio.sleep(23)  # the first demo fill (an add) lands at ~20 s
    aapl = next(r for r in window.cache_model.visible_values() if r.contract.symbol == "AAPL")
    window.cache_table.selectRow(window.cache_model.row_of(aapl.key))
    await asyncio.sleep(1.5)
    window.grab().save(str(out / "demo-live.png"))

    await eventually(lambda: controller.state.missing > 0, 60)
    missing = next(r for r in window.cache_model.values() if r.missing_since is not None)
    await asyncio.sleep(1.5)  # let the reload after the warning settle before selecting
    window.cache_table.selectRow(window.cache_model.row_of(missing.key))
    await eventually(lambda: missing.contract.symbol in window.history_title.text(), 10)
    await asyncio.sleep(0.5)
    window.grab().save(str(out / "demo-discrepancy.png"))

    assert runtime.gateway is not None
    runtime.gateway.stop()  # TWS closes
    await eventually(lambda: controller.state.status.state is not ConnectionState.CONNECTED, 30)
    await asyncio.sleep(2.5)
    window.grab().save(str(out / "demo-offline.png"))
    await controller.stop()
    window.close()


async def take_dark(out: Path, database: Path) -> None:
    """The demo, live, under a dark palette (the system's dark theme)."""
    qt_app = application()
    light = qt_app.palette()
    qt_app.setPalette(dark_palette())
    runtime = Runtime.open(Settings(database_url=f"sqlite:///{database}"), demo=True)
    window = MainWindow("Position Sync — DEMO (demo ledger, made-up positions)")
    controller = WindowController(window, runtime, demo=True)
    window.resize(*SIZE)
    window.show()
    try:
        await controller.start()
        await eventually(lambda: controller.state.last_synced is not None, 30)
        await asyncio.sleep(23)  # the first demo fill (an add) lands at ~20 s
        aapl = next(r for r in window.cache_model.visible_values() if r.contract.symbol == "AAPL")
        window.cache_table.selectRow(window.cache_model.row_of(aapl.key))
        await asyncio.sleep(1.5)
        window.grab().save(str(out / "demo-dark.png"))
    finally:
        await controller.stop()
        window.close()
        qt_app.setPalette(light)


async def take_charts(out: Path, database: Path) -> None:
    """The Charts tab over three weeks of history plus today's demo trading."""
    seed_history(database)
    runtime = Runtime.open(Settings(database_url=f"sqlite:///{database}"), demo=True)
    window = MainWindow("Position Sync — demo")
    controller = WindowController(window, runtime, demo=True)
    window.resize(*SIZE)
    window.show()
    await controller.start()
    today = datetime.now().astimezone().date()

    def realized_today() -> bool:
        days = window.charts.pnl_chart.series.days
        return bool(days) and days[-1].day == today

    # The demo's second fill (~40 s in) is a partial close: today gets its bar.
    window.tabs.setCurrentWidget(window.charts)
    await eventually(realized_today, 90)
    # A finished round trip with adds and partial closes over several days.
    nvda = max(
        (p for p in window.closed_model.values() if p.contract.symbol == "NVDA"),
        key=lambda p: p.id,
    )
    window.closed_table.selectRow(window.closed_model.row_of(nvda.id))
    await eventually(lambda: window.charts.position_chart.path is not None, 10)
    await asyncio.sleep(1.5)
    window.grab().save(str(out / "demo-charts.png"))
    await controller.stop()
    window.close()


async def take_estimates(out: Path, database: Path) -> None:
    """An exact, an estimated and an unknown realized figure; the estimate's tooltip showing.

    Offline (no TWS at that port): the ledger alone. The tooltip is a window of its own, so the
    screen is grabbed, not the main window.
    """
    seed_three_bases(database)
    settings = Settings(database_url=f"sqlite:///{database}", ib_port=1, ib_timeout=1.0)
    runtime = Runtime.open(settings)
    window = MainWindow("Position Sync — estimates")
    controller = WindowController(window, runtime)
    window.resize(*SIZE)
    window.move(0, 0)
    window.show()
    await controller.start()
    cache = window.cache_model
    msft = next(p for p in cache.values() if p.contract.symbol == "MSFT")
    row = cache.row_of(msft.key)
    assert row is not None
    window.cache_table.selectRow(row)
    await eventually(lambda: window.events_model.rowCount() == 2, 10)
    column = next(i for i, col in enumerate(cache.columns) if col.title == "Realized")
    tip = Qt.ItemDataRole.ToolTipRole
    await eventually(lambda: "market price" in (cache.data(cache.index(row, column), tip) or ""))
    table = window.cache_table
    await asyncio.sleep(0.5)
    table.scrollTo(cache.index(row, column))
    await asyncio.sleep(0.5)
    cell = table.visualRect(cache.index(row, column))
    QToolTip.showText(
        table.viewport().mapToGlobal(cell.bottomLeft()),
        cache.data(cache.index(row, column), tip),
        table.viewport(),
    )
    await asyncio.sleep(1.0)
    screen = window.screen()
    frame = window.frameGeometry()
    shot = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
    shot.save(str(out / "estimate-marked.png"))
    QToolTip.hideText()
    await controller.stop()
    window.close()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshots")
    shots = set(sys.argv[2:]) or {"live", "dark", "charts", "estimates"}
    out.mkdir(parents=True, exist_ok=True)
    qt_app = application()
    qt_app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qt_app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as folder:
        if "live" in shots:
            loop.run_until_complete(take(out, Path(folder) / "demo.sqlite"))
        if "dark" in shots:
            loop.run_until_complete(take_dark(out, Path(folder) / "dark.sqlite"))
        if "charts" in shots:
            loop.run_until_complete(take_charts(out, Path(folder) / "charts.sqlite"))
        if "estimates" in shots:
            loop.run_until_complete(take_estimates(out, Path(folder) / "estimates.sqlite"))
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
