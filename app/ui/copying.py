"""Copy on every table: Ctrl+C and a context menu put rows on the clipboard as tab-separated
text with a header row, each cell exactly as displayed (so quantities stay exact)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QTableView


def _cell(value: object) -> str:
    # A tab or line break inside a cell (a note) would split it in the spreadsheet.
    return " ".join(str(value).split()) if value is not None else ""


def rows_text(view: QTableView, rows: list[int]) -> str:
    """The header and `rows` (visible row numbers) of `view`, tab-separated, in the columns'
    on-screen order (moved columns stay where the user put them; hidden ones are left out)."""
    model = view.model()
    header = view.horizontalHeader()
    columns = [
        header.logicalIndex(visual)
        for visual in range(header.count())
        if not header.isSectionHidden(header.logicalIndex(visual))
    ]
    lines = ["\t".join(_cell(model.headerData(c, Qt.Orientation.Horizontal)) for c in columns)]
    for row in rows:
        lines.append("\t".join(_cell(model.data(model.index(row, c))) for c in columns))
    return "\n".join(lines) + "\n"


def selected_rows(view: QTableView) -> list[int]:
    """Visible row numbers with anything selected, top to bottom."""
    return sorted({index.row() for index in view.selectionModel().selectedIndexes()})


def copy_rows(view: QTableView, *, every_row: bool = False) -> str:
    """Put the selected rows (or all shown) on the clipboard; returns the text ("" if none)."""
    rows = list(range(view.model().rowCount())) if every_row else selected_rows(view)
    if not rows:
        return ""
    text = rows_text(view, rows)
    QGuiApplication.clipboard().setText(text)
    return text


class _CopyKey(QObject):
    """Takes Ctrl+C from the view itself: QAbstractItemView would copy only the current cell."""

    def __init__(self, view: QTableView) -> None:
        super().__init__(view)
        self.view = view

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.view
            and event.type() in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
            and isinstance(event, QKeyEvent)
            and event.matches(QKeySequence.StandardKey.Copy)
        ):
            if event.type() == QEvent.Type.KeyPress:
                copy_rows(self.view)
            event.accept()
            return True
        return False


def install_copy(view: QTableView) -> None:
    """Ctrl+C copies the selected rows; the context menu offers Copy and Copy all rows."""
    copy = QAction("Copy", view)
    copy.setObjectName("copyRows")
    # Shown as the menu's hint only: the key itself is handled by the event filter below.
    copy.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))
    copy.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    copy.setShortcutVisibleInContextMenu(True)
    copy.triggered.connect(lambda: copy_rows(view))
    copy_all = QAction("Copy all rows", view)
    copy_all.setObjectName("copyAllRows")
    copy_all.triggered.connect(lambda: copy_rows(view, every_row=True))
    view.addAction(copy)
    view.addAction(copy_all)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    view.installEventFilter(_CopyKey(view))
