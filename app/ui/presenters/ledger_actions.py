"""What the user does to the ledger from the window: Sync now, and Mark closed (asked first when
the broker disagrees, refused when the lifecycle changed since it was shown). In a viewer both
are asked of the process that syncs the ledger (app.ownership), which writes the close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from app.db.errors import DatabaseError
from app.domain.manual import (
    LifecycleChangedError,
    LifecycleVersion,
    MarkClosedError,
    MarkClosedRequest,
)
from app.domain.values import Lifecycle, PositionKey, SyncStatus, SyncTrigger
from app.runtime import Runtime
from app.sync.remote import SyncerUnreachableError
from app.sync.results import SyncResult
from app.sync.tasks import TaskGroup
from app.ui import formatting as fmt
from app.ui.dialogs.awaiting import ask, result_of, tell
from app.ui.dialogs.mark_closed import MarkClosedDialog
from app.ui.main_window import MainWindow
from app.ui.presenters.history_pane import HistoryPane
from app.ui.presenters.selection import Selection
from app.ui.runtime_holder import RuntimeHolder


class LedgerActions:
    """The Sync now and Mark closed buttons."""

    def __init__(
        self,
        window: MainWindow,
        holder: RuntimeHolder,
        tasks: TaskGroup,
        selection: Selection,
        history: HistoryPane,
        reload_keys: Callable[[Iterable[PositionKey]], Awaitable[None]],
        banner: Callable[[], None],
        run_started: Callable[[SyncTrigger], None],
        run_finished: Callable[[SyncResult], None],
    ) -> None:
        self.window = window
        self.holder = holder
        self.tasks = tasks
        self.selection = selection
        self.history = history
        self.reload_keys = reload_keys  # the ledger views re-read these keys' lifecycles
        self._banner = banner  # repaints the banner
        # In a viewer, a run the syncing process makes for us is shown as this window's own.
        self._run_started = run_started
        self._run_finished = run_finished

    @property
    def runtime(self) -> Runtime:
        """The runtime in force (the holder's)."""
        return self.holder.runtime

    def on_sync_button_clicked(self) -> None:
        """Sync now (button and F5)."""
        if not self.runtime.broker_attached:
            return  # still starting: the first sync follows on its own
        if self.runtime.viewer:
            self.tasks.spawn(self.ask_syncer(), "ask-syncer")
            return
        self.tasks.spawn(self.runtime.service.sync_positions(SyncTrigger.MANUAL), "sync-now")

    async def ask_syncer(self) -> None:
        """Sync now in a viewer: the process that syncs the ledger runs it (app.ownership)."""
        self._run_started(SyncTrigger.MANUAL)
        try:
            result = await self.runtime.sync_now()
        except SyncerUnreachableError as exc:
            now = datetime.now(UTC)
            result = SyncResult(SyncTrigger.MANUAL, SyncStatus.SKIPPED, now, now, error=str(exc))
        self._run_finished(result)

    def on_mark_closed_button_clicked(self) -> None:
        """Mark the selected cached position closed (asks first when the broker disagrees)."""
        selected = self.selection.selected
        if selected is not None and selected.is_open:
            # The copy the views hold now: a reload since the selection replaced the row.
            position = self.selection.current_version(selected)
            if position.is_open:
                self.tasks.spawn(self.mark_selected_closed(position), "mark-closed")

    async def mark_selected_closed(self, position: Lifecycle) -> None:
        """Ask (when the broker still reports it), then record MARKED_CLOSED through the ledger's
        write door, which refuses when the lifecycle changed since it was shown here."""
        w = self.window
        # What the user is deciding on, taken now: a sync may book a fill (and the window reload)
        # while the dialogs below are open, and the close must not be written over that.
        seen = LifecycleVersion.of(position, await self.history.last_event_seen(position))
        # Ask the live subscription itself, not the table: the table repaints a moment later.
        reported = (
            [r for r in self.runtime.broker.live_positions([position.key]) if r.quantity]
            if self.runtime.broker_attached
            else []
        )
        if reported:
            live = reported[0]
            symbol = position.contract.local_symbol or position.contract.symbol
            go_on = await ask(
                w,
                "The broker still reports this position",
                f"TWS reports {fmt.quantity(live.quantity)} {symbol} in {position.account} "
                "right now.",
                "Marking it closed records a close the broker does not confirm; the next sync "
                "will open a new lifecycle for what TWS reports. Mark it closed anyway?",
            )
            if not go_on:
                return
        dialog = MarkClosedDialog(position, w)
        if await result_of(dialog) != MarkClosedDialog.DialogCode.Accepted:
            return
        price = dialog.exit_price()
        assert price is not None
        request = MarkClosedRequest(seen, price, dialog.closed_at(), dialog.note.text().strip())
        refused: str | None = None
        try:
            await self.runtime.mark_closed(request)
        except LifecycleChangedError as exc:
            refused = str(exc)
        except (MarkClosedError, ValueError, DatabaseError) as exc:
            await tell(w, "Could not mark closed", str(exc))
        except SyncerUnreachableError as exc:
            # A viewer asked the syncing process, which did not answer: it may have written the
            # close or not; the reload below shows which.
            await self.reload_keys([position.key])
            self._banner()
            await tell(w, "Could not mark closed", f"{exc}. The ledger as it is now is shown.")
            return
        if refused is not None:
            # Reload first, so the message box stands over what changed, then tell.
            await self.reload_keys([position.key])  # also the history pane, when it shows it
            self._banner()
            await tell(w, "Not marked closed: the position changed", refused)
            return
        await self.reload_keys([position.key])
        await self.history.show(self.window.closed_model.get(position.id))
        self._banner()
