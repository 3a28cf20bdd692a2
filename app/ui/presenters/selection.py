"""The selected lifecycle: twin rows selected together in the broker and cache tables, its
history shown, Mark closed enabled for an open one."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelection

from app.domain.values import Lifecycle
from app.sync.tasks import TaskGroup
from app.ui.main_window import MainWindow
from app.ui.models.keyed import KeyedTableModel
from app.ui.presenters.history_pane import HistoryPane


class Selection:
    """What the user selected, kept as the views hold it."""

    def __init__(self, window: MainWindow, tasks: TaskGroup, history: HistoryPane) -> None:
        self.window = window
        self.tasks = tasks
        self.history = history
        self.selected: Lifecycle | None = None
        self._mirroring = False  # selecting the twin row in the other table

    def on_cache_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        """Show the selected open lifecycle's history; enable Mark closed."""
        self._select_from(self.window.cache_model, selected)
        if self.selected is not None:
            broker = self.window.broker_model
            self._select_key(self.window.broker_table, broker, self.selected.key)

    def on_broker_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        """Selecting a broker row selects the same (account, conId) in the cache, and back."""
        rows = {index.row() for index in selected.indexes()}
        if rows:
            key = self.window.broker_model.key_of(self.window.broker_model.row(min(rows)))
            self._select_key(self.window.cache_table, self.window.cache_model, key)

    def on_closed_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        """Show the selected closed lifecycle's history."""
        self._select_from(self.window.closed_model, selected)

    def _select_key(self, view: Any, model: KeyedTableModel, key: Any) -> None:
        if self._mirroring:
            return
        row = model.row_of(key)
        current = view.selectionModel().selectedRows()
        if row is not None and current and current[0].row() == row:
            return
        self._mirroring = True
        try:
            if row is None:
                view.clearSelection()  # no twin: a stale selection would point elsewhere
            else:
                view.selectRow(row)
                view.scrollTo(model.index(row, 0))
        finally:
            self._mirroring = False

    def _select_from(self, model: KeyedTableModel, selected: QItemSelection) -> None:
        rows = {index.row() for index in selected.indexes()}
        position: Lifecycle | None = model.row(min(rows)) if rows else None
        self.selected = position
        self.window.mark_closed_button.setEnabled(position is not None and position.is_open)
        self.tasks.spawn(self.history.show(position), "history")

    def current_version(self, position: Lifecycle) -> Lifecycle:
        """The freshest copy of a lifecycle the views hold (it may have closed meanwhile)."""
        found: Lifecycle | None = None
        if position.is_open:
            found = self.window.cache_model.get(position.key)
            if found is not None and found.id != position.id:
                found = None
        if found is None:
            found = self.window.closed_model.get(position.id)
        return found if found is not None else position
