"""Screenshots of the demo for the README: live, with a discrepancy, and offline.

Run under a real X server (Xvfb), not offscreen, so the window is painted by the platform:

    Xvfb :99 -screen 0 1400x900x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python -m tests.ui.screenshots resources/screenshots

It takes about a minute: the demo's vanishing position shows up after ~45 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import qasync

from app.domain.connection import ConnectionState
from app.runtime import Runtime
from app.settings import Settings
from app.ui.app import application
from app.ui.controller import WindowController
from app.ui.main_window import MainWindow
from tests.ui.conftest import eventually


async def take(out: Path, database: Path) -> None:
    runtime = Runtime.open(Settings(database_url=f"sqlite:///{database}"), demo=True)
    window = MainWindow("Position Sync — demo")
    controller = WindowController(window, runtime, demo=True)
    window.resize(1400, 860)
    window.show()
    await controller.start()
    await eventually(lambda: controller.last_synced is not None, 30)
    await asyncio.sleep(23)  # the first demo fill (an add) lands at ~20 s
    aapl = next(r for r in window.cache_model.visible_values() if r.contract.symbol == "AAPL")
    window.cache_table.selectRow(window.cache_model.row_of(aapl.key))
    await asyncio.sleep(1.5)
    window.grab().save(str(out / "demo-live.png"))

    await eventually(lambda: controller.missing > 0, 60)
    missing = next(r for r in window.cache_model.values() if r.missing_since is not None)
    await asyncio.sleep(1.5)  # let the reload after the warning settle before selecting
    window.cache_table.selectRow(window.cache_model.row_of(missing.key))
    await eventually(lambda: missing.contract.symbol in window.history_title.text(), 10)
    await asyncio.sleep(0.5)
    window.grab().save(str(out / "demo-discrepancy.png"))

    assert runtime.gateway is not None
    runtime.gateway.stop()  # TWS closes
    await eventually(lambda: controller.status.state is not ConnectionState.CONNECTED, 30)
    await asyncio.sleep(2.5)
    window.grab().save(str(out / "demo-offline.png"))
    await controller.stop()
    window.close()


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "resources/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    qt_app = application()
    qt_app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qt_app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as folder:
        loop.run_until_complete(take(out, Path(folder) / "demo.sqlite"))
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
