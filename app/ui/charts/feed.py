"""ChartsFeed: keeps the Charts tab current from the ledger, without blocking the Qt thread.

The daily series is read and summed on the database thread (the ledger reader's
`realized_by_day`), and only
while the tab is showing: a sync marks it stale, the tab reloads when it is (or becomes)
visible, and changes that arrive during a load are caught by one more pass. Everything is read
from the cache, so the charts work offline as well as live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo

from app.db.errors import DatabaseError
from app.domain.records import StoredEvent
from app.domain.series import lifecycle_path
from app.domain.values import Fill, Lifecycle
from app.runtime import Runtime
from app.sync.tasks import TaskGroup
from app.ui.main_window import ALL_ACCOUNTS, MainWindow

log = logging.getLogger(__name__)


class ChartsFeed:
    """Loads the daily realized P&L into the Charts tab and charts the selected lifecycle."""

    def __init__(
        self, window: MainWindow, runtime_of: Callable[[], Runtime], tasks: TaskGroup
    ) -> None:
        self.window = window
        self.pane = window.charts
        self.tz: tzinfo | None = None
        """Whose calendar days the bars follow; None is this workstation's zone (tests pin it)."""
        self.loads = 0
        """Completed loads of the daily series (tests and diagnostics)."""
        self._runtime_of = runtime_of
        self._tasks = tasks
        self._stale = True
        self._loading = False
        window.tabs.currentChanged.connect(self.on_tabs_current_changed)
        window.account_filter.currentTextChanged.connect(self.on_account_filter_changed)

    # ------------------------------------------------------------------ triggers
    def ledger_changed(self) -> None:
        """A sync (or Mark closed) committed, or the setting `cost_basis` changed: the daily
        series is stale."""
        self._stale = True
        self._load_if_showing()

    def on_tabs_current_changed(self, _index: int) -> None:
        """The Charts tab came into view (or left it)."""
        self._load_if_showing()

    def on_account_filter_changed(self, _text: str) -> None:
        """The window's account filter also filters the daily chart."""
        self._stale = True
        self._load_if_showing()

    def showing(self) -> bool:
        """Whether the Charts tab is the current one."""
        return self.window.tabs.currentWidget() is self.pane

    # ------------------------------------------------------------------ loading
    def _load_if_showing(self) -> None:
        if self._stale and not self._loading and self.showing():
            self._loading = True
            self._tasks.spawn(self._load(), "charts")

    async def _load(self) -> None:
        try:
            while self._stale:
                self._stale = False
                account = self.window.account_filter.currentText()
                chosen = None if account in ("", ALL_ACCOUNTS) else account
                runtime = self._runtime_of()
                cost_basis = runtime.settings.cost_basis  # in force now (the dialog changes it)
                series = await runtime.reader.realized_by_day(chosen, self.tz, cost_basis)
                self.pane.show_realized(series)
                self.loads += 1
        except DatabaseError as exc:
            log.warning("charts: could not read the realized P&L: %s", exc)
            self.pane.show_problem(str(exc))
        finally:
            self._loading = False

    # ------------------------------------------------------------------ selection
    def show_position(
        self,
        position: Lifecycle | None,
        events: Sequence[StoredEvent] = (),
        fills: Sequence[Fill] = (),
    ) -> None:
        """Chart the lifecycle the history pane shows (its events and fills are loaded there)."""
        if position is None:
            self.pane.show_position(None, None)
            return
        path = lifecycle_path(position, events, fills, now=datetime.now(UTC))
        self.pane.show_position(position, path)
