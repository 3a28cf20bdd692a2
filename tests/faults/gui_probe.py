"""`python -m tests.faults.gui_probe DB PORT`: start the window as `position-sync gui` does.

A message box would wait for a click offscreen, so `QMessageBox.critical` prints its title and
text instead ("MESSAGE BOX: …"). The window closes itself after 3 s if it opens at all; the exit
code is the window's.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    from PySide6.QtWidgets import QMessageBox

    from app.settings import Settings
    from app.ui import app as window_app

    def critical(parent: object, title: str, text: str, *args: object) -> object:
        print(f"MESSAGE BOX: {title}: {text}", flush=True)
        return QMessageBox.StandardButton.Ok

    window_app.QMessageBox.critical = critical  # type: ignore[method-assign, assignment]
    settings = Settings(database_url=sys.argv[1], ib_port=int(sys.argv[2]), ib_timeout=2.0)
    return window_app.run_window(settings, quit_after=3.0)


if __name__ == "__main__":
    sys.exit(main())
