"""Screenshots of the window with `cost_basis=fifo` (issue 17, item 4): the Closed view's totals
line, the summary strip and the Charts tab in FIFO lots, saying so.

Offscreen is enough (nothing here depends on the platform's painting):

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.ui.cost_basis_screenshot /tmp/shots

Offline (no TWS at that port): the demo's three weeks of history (tests/ui/demo_history.py) plus
the known ledger of tests/db/cost_basis_ledger.py (USD and EUR, an estimated FIFO amount, one
event without a FIFO figure) in one SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import qasync

from app.domain.values import CostBasis
from app.runtime import Runtime
from app.settings import Settings
from app.ui.app import application
from app.ui.controller import WindowController
from app.ui.main_window import MainWindow
from tests.db.cost_basis_ledger import cost_basis_ledger
from tests.ui.conftest import eventually, free_port
from tests.ui.demo_history import seed_history

SIZE = (1280, 800)


async def take(out: Path, database: Path) -> list[Path]:
    settings = Settings(
        database_url=f"sqlite:///{database}", ib_port=free_port(), cost_basis=CostBasis.FIFO
    )
    runtime = Runtime.open(settings)
    window = MainWindow("Position Sync — cost_basis=fifo")
    controller = WindowController(window, runtime)
    window.resize(*SIZE)
    window.show()
    await controller.start()
    strip = window.summary_strip
    await eventually(lambda: strip.summary is not None and strip.summary.currencies, 20)
    shots = []
    window.tabs.setCurrentIndex(window.tabs.indexOf(window.closed_table.parentWidget()))
    await eventually(lambda: "FIFO lots" in window.closed_totals.text())
    await asyncio.sleep(0.5)
    shots.append(out / "costbasis-fifo-closed.png")
    window.grab().save(str(shots[-1]))
    window.tabs.setCurrentWidget(window.charts)
    await eventually(lambda: window.charts.pnl_chart.series.days, 20)
    window.charts.pnl_currency.setCurrentText("USD")
    await asyncio.sleep(0.5)
    shots.append(out / "costbasis-fifo-charts.png")
    window.grab().save(str(shots[-1]))
    await controller.stop()
    window.close()
    return shots


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "ledger.sqlite"
        seed_history(database)
        cost_basis_ledger(database)  # its syncs run their own loop: before the window's
        shots = loop.run_until_complete(take(out, database))
    print("screenshots:", *shots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
