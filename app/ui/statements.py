"""File → Import IB statement… and Fetch statement: `position-sync flex import|fetch` in the window.

The files are read and checked off the Qt thread (app.flex.parse), the Flex Web Service is asked
off it too (app.flex.service, blocking HTTP in a worker thread), and the import is one
transaction on the database thread (the ledger writer's `import_statement`) — the window never
freezes. A progress dialog says what is happening; a summary (trades new / already known,
positions re-derived, P&L that changed per currency) or the reason it failed follows, and the
views reload.

app.flex (XML parsing, urllib and http.client) and the statements' domain and database modules
are imported on the first import or fetch, not with the window: ~25 ms less before the cached
ledger is first painted.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox, QProgressDialog

from app.db.errors import DatabaseError
from app.domain.plan import ReconcileOptions
from app.runtime import Runtime
from app.sync.tasks import TaskGroup
from app.ui.dialogs.awaiting import result_of, tell
from app.ui.viewer import write_refusal

if TYPE_CHECKING:
    from app.domain.statements import ImportSummary, Statement

log = logging.getLogger(__name__)

XML_FILTER = "Flex statements (*.xml)"


def add_statement_menu(menu: QMenu) -> tuple[QAction, QAction]:
    """File menu items: Import IB statement… and Fetch statement (wired by StatementImporter)."""
    importing = menu.addAction("Import IB statement…")
    importing.setObjectName("importStatement")
    fetching = menu.addAction("Fetch statement")
    fetching.setObjectName("fetchStatement")
    fetching.setToolTip("Download the Flex query flex_query_id with flex_token (Settings)")
    return importing, fetching


class StatementImporter:
    """Runs statement imports against whichever runtime the window holds now."""

    def __init__(
        self,
        window: QMainWindow,
        actions: tuple[QAction, QAction],
        runtime_of: Callable[[], Runtime],
        tasks: TaskGroup,
        reload: Callable[[], Awaitable[None]],
    ) -> None:
        self.window = window
        self.folder = Path.home()
        self.dialog: QFileDialog | None = None  # the open file dialog (tests drive it)
        self.progress: QProgressDialog | None = None
        self.summary: QMessageBox | None = None
        self._runtime_of = runtime_of
        self._tasks = tasks
        self._reload = reload
        self.import_action, self.fetch_action = actions
        self.import_action.triggered.connect(self.on_import_triggered)
        self.fetch_action.triggered.connect(self.on_fetch_triggered)
        menu = self.fetch_action.parent()
        if isinstance(menu, QMenu):
            menu.aboutToShow.connect(self.update_actions)
        self.update_actions()

    def update_actions(self) -> None:
        """Fetch statement is offered when a token is set."""
        self.fetch_action.setEnabled(bool(self._runtime_of().settings.flex_token))

    def on_import_triggered(self, _checked: bool = False) -> None:
        """File → Import IB statement…"""
        self._tasks.spawn(self.import_files(), "import-statement")

    def on_fetch_triggered(self, _checked: bool = False) -> None:
        """File → Fetch statement."""
        self._tasks.spawn(self.fetch(), "fetch-statement")

    async def import_files(self) -> ImportSummary | None:
        """Ask which files, then import them."""
        files = await self.ask_files()
        if not files:
            return None
        return await self.import_paths(files)

    async def ask_files(self) -> list[Path]:
        """An open dialog for one or more statement files; [] when cancelled."""
        dialog = QFileDialog(self.window, "Import IB statements")
        dialog.setObjectName("importStatementDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        dialog.setNameFilters([XML_FILTER, "All files (*)"])
        dialog.setDirectory(str(self.folder))
        self.dialog = dialog
        try:
            if await result_of(dialog) != QFileDialog.DialogCode.Accepted:
                return []
            return [Path(name) for name in dialog.selectedFiles()]
        finally:
            self.dialog = None
            dialog.deleteLater()

    async def import_paths(self, paths: list[Path]) -> ImportSummary | None:
        """Read, check and import these files (all or nothing); the summary, or None."""
        # Loaded on first use (see the module docstring).
        from app.domain.statements import StatementError, merge
        from app.flex.parse import read_statement

        zone = ZoneInfo(self._runtime_of().settings.flex_timezone)
        progress = self._show_progress("Reading the statements…")
        try:
            statement = await asyncio.to_thread(
                lambda: merge(read_statement(path, zone) for path in paths)
            )
            self.folder = paths[0].parent
            return await self._import(statement, progress)
        except StatementError as exc:
            self._close_progress()
            await tell(self.window, "Statement not imported", f"{exc}\n\nNothing was changed.")
            return None
        finally:
            self._close_progress()

    async def fetch(self) -> ImportSummary | None:
        """Download the statement from the Flex Web Service, then import it."""
        # Loaded on first use (see the module docstring).
        from app.domain.statements import StatementError
        from app.flex.parse import parse_statement
        from app.flex.service import FlexRequest, FlexServiceError, fetch_statement

        settings = self._runtime_of().settings
        request = FlexRequest(settings.flex_url, settings.flex_token, settings.flex_query_id)
        progress = self._show_progress("Asking IB for the statement…")
        loop = asyncio.get_running_loop()

        def said(text: str) -> None:  # from the worker thread: hand it to the loop's thread
            loop.call_soon_threadsafe(self._say, text)

        try:
            data = await asyncio.to_thread(fetch_statement, request, progress=said)
            source = f"Flex Web Service (query {settings.flex_query_id})"
            zone = ZoneInfo(settings.flex_timezone)
            statement = await asyncio.to_thread(parse_statement, data, source, zone)
            return await self._import(statement, progress)
        except (FlexServiceError, StatementError) as exc:
            self._close_progress()
            await tell(self.window, "Statement not fetched", f"{exc}\n\nNothing was changed.")
            return None
        finally:
            self._close_progress()

    async def _import(
        self, statement: Statement, progress: QProgressDialog
    ) -> ImportSummary | None:
        runtime = self._runtime_of()
        refused = write_refusal(runtime)  # another process syncs (and writes) this ledger
        if refused is not None:
            self._close_progress()
            await tell(self.window, "Statement not imported", f"{refused}\n\nNothing was changed.")
            return None
        progress.setLabelText(f"Merging {statement.trades} trade(s) into the ledger…")
        options = ReconcileOptions(
            mark_missing_as_closed=runtime.settings.mark_missing_as_closed,
            calculate_realized_pnl=runtime.settings.calculate_realized_pnl,
        )
        try:
            summary = await runtime.writer.import_statement(statement, options)
        except DatabaseError as exc:
            log.warning("statement import failed: %s", exc)
            self._close_progress()
            await tell(self.window, "Statement not imported", f"{exc}\n\nNothing was changed.")
            return None
        self._close_progress()
        if summary.changed:
            await self._reload()
        await self._show_summary(summary)
        return summary

    async def _show_summary(self, summary: ImportSummary) -> None:
        from app.domain.statements import summary_lines

        box = QMessageBox(
            QMessageBox.Icon.Information,
            "IB statement imported",
            "",
            QMessageBox.StandardButton.Ok,
            self.window,
        )
        box.setObjectName("statementSummary")
        # Preformatted: the summary's columns line up as in the terminal, lines never wrap.
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(f"<pre>{html.escape(chr(10).join(summary_lines(summary)))}</pre>")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = box
        try:
            await result_of(box)
        finally:
            self.summary = None
            box.deleteLater()

    def _show_progress(self, text: str) -> QProgressDialog:
        progress = QProgressDialog(text, "", 0, 0, self.window)  # busy: no steps to count
        progress.setObjectName("statementProgress")
        progress.setWindowTitle("IB statement")
        progress.setCancelButton(None)  # no Cancel: an import is one transaction, not stoppable
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.show()
        self.progress = progress
        return progress

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.setLabelText(text[:1].upper() + text[1:] + "…")

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None
