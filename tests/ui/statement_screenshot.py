"""The README's screenshot of an IB statement import's summary (File → Import IB statement…).

Run under a real X server (Xvfb), as tests/ui/screenshots.py:

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python -m tests.ui.statement_screenshot

(into resources/screenshots unless a folder is named). Offline (no TWS at that port): a ledger
whose sync booked a sale it did not see as an estimate, and the statement that makes it exact.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import qasync

from app.runtime import Runtime
from app.settings import Settings
from app.ui.app import application
from app.ui.controller import WindowController
from app.ui.main_window import MainWindow
from tests.flex.builder import StatementXml, write
from tests.flex.test_import import BUY, SALE
from tests.ui.conftest import eventually
from tests.ui.test_statements import missed_sale_ledger


async def take(out: Path, folder: Path) -> None:
    database = folder / "ledger.sqlite"
    missed_sale_ledger(database)
    statement = write(folder / "2026-11.xml", StatementXml("DU111").trade(BUY).trade(SALE))
    settings = Settings(database_url=f"sqlite:///{database}", ib_port=1, ib_timeout=1.0)
    runtime = Runtime.open(settings)
    window = MainWindow("Position Sync — IB statement")
    controller = WindowController(window, runtime)
    window.resize(1400, 860)
    window.move(0, 0)
    window.show()
    await controller.start()
    task = asyncio.ensure_future(controller.statements.import_paths([statement]))
    box = await eventually(lambda: controller.statements.summary, 30)
    await eventually(box.isVisible)
    await asyncio.sleep(1.0)
    screen = window.screen()
    frame = window.frameGeometry()
    shot = screen.grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
    shot.save(str(out / "flex-import-summary.png"))
    box.accept()
    await task
    await controller.stop()
    window.close()
    runtime.close()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = application()
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as folder:
        loop.run_until_complete(take(out, Path(folder)))
    print(f"screenshot in {out / 'flex-import-summary.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
