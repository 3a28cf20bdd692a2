"""Runs in a child process (tests/ui/test_startup.py): the real `position-sync gui`, offline,
recording at the first paint of the cached rows which modules were loaded and what the banner
said, and every banner text shown until then. Writes JSON to REPORT, then quits.

    python -m tests.ui.startup_probe REPORT EXPECT -- GUI-ARGS…
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

HEAVY = ("ib_insync", "eventkit", "aiohttp", "alembic", "app.broker.adapter", "app.api")
"""Needed only once connected (or with the local API on, or migrating)."""

NOT_FOR_PAINT = (
    *HEAVY,
    "numpy",  # the broker stack's: loads once the rows are on screen (app.ui.painting)
    "sqlalchemy.dialects.postgresql",  # never on SQLite (app.db.partial_index)
    "app.sim",  # only --demo and `gateway`
    "app.flex",  # only a statement import or fetch
    "app.db.statements",  # the same
    # The FIFO fold and the reconciliation: a sync, a selected position's lots, an export
    # (app.db.reader, app.db.store, app.db.manual import them when first used)
    "app.domain.fold",
    "app.domain.lots",
    "app.domain.reconcile",
    "app.db.export",
    "app.db.lots",
)
"""Nothing of these is loaded when the cached ledger is first painted."""


def main(argv: list[str]) -> int:
    split = argv.index("--")
    report, expect = argv[:split]
    gui_args = argv[split + 1 :]
    out: dict[str, Any] = {"banners": []}
    started = time.monotonic()

    from app.cli.collector import claim_process
    from app.cli.commands.gui import import_window_modules
    from app.cli.main import main as cli_main

    claim_process()  # a process started for the window, as `position-sync gui` is

    import_window_modules()  # as `position-sync gui` does, in its order (PySide6 last)
    from PySide6.QtCore import QEvent, QObject, QTimer

    import app.ui.app as ui_app

    base_window = ui_app.MainWindow
    expected = int(expect)

    class Probe(QObject):
        def __init__(self, window: Any) -> None:
            super().__init__(window)
            self.window = window

        def eventFilter(self, watched: Any, event: Any) -> bool:
            if event.type() == QEvent.Type.Paint:
                out["banners"].append(self.window.banner.text())
                if "painted" not in out and self.window.cache_model.rowCount() >= expected:
                    out["painted"] = time.monotonic() - started
                    out["loaded_at_paint"] = [m for m in NOT_FOR_PAINT if m in sys.modules]
                    out["banner_at_paint"] = self.window.banner.text()
                    QTimer.singleShot(3000, self.finish)  # the broker stack loads meanwhile
            return False

        def finish(self) -> None:
            out["loaded_later"] = [m for m in HEAVY if m in sys.modules]
            out["banner_later"] = self.window.banner.text()
            self.window.close()

    class ProbedWindow(base_window):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.probe = Probe(self)
            self.cache_table.viewport().installEventFilter(self.probe)
            self.banner.installEventFilter(self.probe)
            QTimer.singleShot(60_000, self.close)

    ui_app.MainWindow = ProbedWindow
    out["exit_code"] = cli_main(["gui", *gui_args])
    Path(report).write_text(json.dumps(out))
    return int(out["exit_code"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
