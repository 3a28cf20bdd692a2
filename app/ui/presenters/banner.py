"""The banner over the tables, repainted from WindowState: at each change and every second."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from PySide6.QtCore import QTimer

from app.ui.banner import banner_state
from app.ui.main_window import MainWindow
from app.ui.window_state import WindowState


class BannerPresenter:
    """Says what the window shows and how fresh it is (the banner's age ticks every second)."""

    def __init__(
        self,
        window: MainWindow,
        state: WindowState,
        *,
        demo: bool = False,
        syncer: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.window = window
        self.state = state
        self.demo = demo
        self._syncer = syncer  # in a viewer: which process syncs the ledger (app.ui.viewer)
        self._ticker = QTimer(window)
        self._ticker.setInterval(1000)  # the banner's age ticks every second
        self._ticker.timeout.connect(self.update)

    def start(self) -> None:
        """Tick every second from now on."""
        self._ticker.start()

    def stop(self) -> None:
        """No more ticks."""
        self._ticker.stop()

    def update(self) -> None:
        """Repaint the banner for this second."""
        s = self.state
        state = banner_state(
            s.status,
            running=s.running,
            last_result=s.last_result,
            last_synced=s.last_synced,
            missing=s.missing,
            now=datetime.now(UTC),
            ledger_read=s.loaded.is_set(),
            demo=self.demo,
            gaps=s.gaps,
            syncer=self._syncer(),
        )
        self.window.banner.show_state(state)
