"""File → Export: the same exports as `position-sync export`, to a file the user picks.

The rows are read on the database thread (the ledger reader's `export_rows`, shared with the
command line), the
file is written off the Qt thread, atomically; the dialog opens with `open()` and is awaited.
What is exported is the user's choice: the account the filter shows (the menu's checked "Only
the account shown", the default) or every account. CSV neutralises formula-leading text
(app.domain.export.csv_cell); JSON keeps the exact text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu

from app.db.errors import DatabaseError
from app.domain.export import ExportFormat, ExportKind, render
from app.runtime import Runtime
from app.sync.tasks import TaskGroup
from app.ui.dialogs.awaiting import result_of, tell

log = logging.getLogger(__name__)

TITLES = {
    ExportKind.POSITIONS: "Open positions…",
    ExportKind.ALL: "All positions, open and closed…",
    ExportKind.EVENTS: "Events of every position…",
    ExportKind.FILLS: "Fills…",
    ExportKind.LOTS: "Open FIFO tax lots…",
}
NOUNS = {
    ExportKind.POSITIONS: "open positions",
    ExportKind.ALL: "positions",
    ExportKind.EVENTS: "events",
    ExportKind.FILLS: "fills",
    ExportKind.LOTS: "open lots",
}
STATUS_MS = 15_000
CSV_FILTER = "CSV for spreadsheets (*.csv)"
JSON_FILTER = "JSON (*.json)"


ONLY_SHOWN = "Only the account shown"
SHORTCUTS = {ExportKind.POSITIONS: "Ctrl+E", ExportKind.ALL: "Ctrl+Shift+E"}


def add_export_menu(menu: QMenu) -> tuple[dict[ExportKind, QAction], QAction]:
    """An Export submenu: one action per export kind, and the checkable "Only the account
    shown" (on: the account filter's account; off, or with All accounts: every account)."""
    submenu = menu.addMenu("Export")
    submenu.setObjectName("exportMenu")
    actions = {}
    for kind, title in TITLES.items():
        action = submenu.addAction(title)
        action.setObjectName(f"export_{kind.value}")
        if kind in SHORTCUTS:
            action.setShortcut(QKeySequence(SHORTCUTS[kind]))
        actions[kind] = action
    submenu.addSeparator()
    only_shown = submenu.addAction(ONLY_SHOWN)
    only_shown.setObjectName("exportOnlyShown")
    only_shown.setCheckable(True)
    only_shown.setChecked(True)
    only_shown.setToolTip(
        "Export only the account chosen in the account filter (the text filter is not applied)"
    )
    return actions, only_shown


def destination_format(path: Path, name_filter: str) -> ExportFormat:
    """JSON when the file says so (or the JSON filter was chosen), else CSV."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".json"):
        return ExportFormat(suffix[1:])
    return ExportFormat.JSON if name_filter == JSON_FILTER else ExportFormat.CSV


class Exporter:
    """Runs the window's exports against whichever runtime the window holds now."""

    def __init__(
        self,
        window: QMainWindow,
        actions: dict[ExportKind, QAction],
        runtime_of: Callable[[], Runtime],
        tasks: TaskGroup,
        *,
        shown_account: Callable[[], str | None] = lambda: None,
        only_shown: QAction | None = None,
    ) -> None:
        self.window = window
        self.only_shown = only_shown
        self._shown_account = shown_account
        self.folder = Path.home()
        self.dialog: QFileDialog | None = None  # the open file dialog, if any (tests drive it)
        self._runtime_of = runtime_of
        self._tasks = tasks
        for kind, action in actions.items():
            action.triggered.connect(partial(self.on_export_triggered, kind))

    def on_export_triggered(self, kind: ExportKind, _checked: bool = False) -> None:
        """A File → Export item."""
        self._tasks.spawn(self.export(kind), f"export-{kind.value}")

    async def export(self, kind: ExportKind) -> None:
        """Ask where, then write."""
        chosen = await self.ask_destination(kind)
        if chosen is not None:
            await self.export_to(kind, *chosen)

    async def ask_destination(self, kind: ExportKind) -> tuple[Path, ExportFormat] | None:
        """A save dialog (CSV or JSON); None when cancelled."""
        stamp = datetime.now().astimezone().strftime("%Y-%m-%d")
        dialog = QFileDialog(self.window, f"Export {NOUNS[kind]}")
        dialog.setObjectName("exportDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setNameFilters([CSV_FILTER, JSON_FILTER])
        dialog.setDefaultSuffix("csv")
        dialog.filterSelected.connect(
            lambda chosen: dialog.setDefaultSuffix("json" if chosen == JSON_FILTER else "csv")
        )
        dialog.setDirectory(str(self.folder))
        dialog.selectFile(f"position-sync-{kind.value}-{stamp}.csv")
        self.dialog = dialog
        try:
            if await result_of(dialog) != QFileDialog.DialogCode.Accepted:
                return None
            files = dialog.selectedFiles()
            if not files:
                return None
            path = Path(files[0])
            return path, destination_format(path, dialog.selectedNameFilter())
        finally:
            self.dialog = None
            dialog.deleteLater()

    def account(self) -> str | None:
        """The account an export keeps (None: every account), as the menu chooses."""
        if self.only_shown is not None and not self.only_shown.isChecked():
            return None
        return self._shown_account()

    async def export_to(self, kind: ExportKind, path: Path, fmt: ExportFormat) -> int | None:
        """Read the rows (database thread), write the file (a worker thread); rows written."""
        account = self.account()
        # Imported here: app.db.export brings the FIFO fold, not needed before the first paint
        # of the cached ledger (issue 19).
        from app.db.export import ExportError, save_export

        try:
            table = await self._runtime_of().reader.export_rows(kind, account)
            text = render(table, fmt, datetime.now(UTC).replace(microsecond=0))
            await asyncio.to_thread(save_export, path, text)
        except (ExportError, DatabaseError) as exc:
            log.warning("export failed: %s", exc)
            await tell(self.window, "Export failed", str(exc))
            return None
        self.folder = path.parent
        of = f" of {account}" if account is not None else ""
        self.window.statusBar().showMessage(
            f"Exported {len(table.rows)} {NOUNS[kind]}{of} to {path}", STATUS_MS
        )
        return len(table.rows)
