"""The settings dialog, applied at once through the runtime holder (no restart)."""

from __future__ import annotations

from app.settings import Settings, save_settings
from app.sync.tasks import TaskGroup
from app.ui.dialogs.awaiting import result_of, tell
from app.ui.dialogs.settings_dialog import SettingsDialog
from app.ui.main_window import MainWindow
from app.ui.runtime_holder import NotApplied, RuntimeHolder


class SettingsPresenter:
    """Edits, saves and applies the user's settings."""

    def __init__(self, window: MainWindow, holder: RuntimeHolder, tasks: TaskGroup) -> None:
        self.window = window
        self.holder = holder
        self.tasks = tasks

    def on_settings_action_triggered(self) -> None:
        """Open the settings dialog."""
        self.tasks.spawn(self.edit(), "settings")

    async def edit(self) -> None:
        """Settings dialog; applied at once, without a restart."""
        dialog = SettingsDialog(self.holder.runtime.requested, self.window)
        if await result_of(dialog) != SettingsDialog.DialogCode.Accepted:
            return
        new = dialog.result_settings()
        try:
            save_settings(new)
        except OSError as exc:
            await tell(self.window, "Settings not saved", f"Could not write the settings: {exc}")
        await self.apply(new)

    async def apply(self, new: Settings) -> None:
        """Use `new` now (RuntimeHolder.apply); a ledger that cannot be opened is told."""
        try:
            await self.holder.apply(new)
        except NotApplied as exc:
            await tell(self.window, "Settings not applied", str(exc))
