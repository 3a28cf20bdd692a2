"""WindowController: runs the sync stack on the qasync loop and keeps the window truthful.

Everything here runs on the GUI thread (qasync drives asyncio from Qt's loop); database work goes
to the database thread through the runtime's ledger reader and writer, broker work is asyncio
I/O, and big model updates are sliced so the event loop never stalls for long.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QItemSelection, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QStyle

from app.db.errors import DatabaseError
from app.domain.connection import (
    BrokerEvent,
    ConnectionState,
    ConnectionStatus,
)
from app.domain.discrepancy import STEP, Discrepancy, comparing, run_steps
from app.domain.lots import open_lots_of
from app.domain.manual import (
    LifecycleChangedError,
    LifecycleVersion,
    MarkClosedError,
    MarkClosedRequest,
)
from app.domain.series import RealizedAmount
from app.domain.values import (
    BrokerPosition,
    CostBasis,
    Lifecycle,
    PositionKey,
    SyncStatus,
    SyncTrigger,
)
from app.runtime import Runtime, preload_broker_dependencies, sync_options
from app.settings import Settings, save_settings
from app.sync.remote import SyncerUnreachableError
from app.sync.results import SyncResult
from app.sync.tasks import TaskGroup
from app.ui import estimates
from app.ui import formatting as fmt
from app.ui.banner import DataGaps, banner_state, note_result
from app.ui.charts.feed import ChartsFeed
from app.ui.closed_totals import closed_totals_html
from app.ui.dialogs.awaiting import ask, result_of, tell
from app.ui.dialogs.mark_closed import MarkClosedDialog
from app.ui.dialogs.settings_dialog import SettingsDialog
from app.ui.exporting import Exporter
from app.ui.heap import HeapKeeper, forget_module_sources
from app.ui.main_window import ALL_ACCOUNTS, MainWindow
from app.ui.models.keyed import Highlight, KeyedTableModel
from app.ui.notifications import DesktopNotifier
from app.ui.palette import colours_for
from app.ui.resources import standard_icon
from app.ui.statements import StatementImporter
from app.ui.summary_strip import SummaryFeed
from app.ui.viewer import syncer_text, write_refusal

log = logging.getLogger(__name__)

SLICE = 2_000  # rows per model update slice: a few milliseconds of GUI work each

BIG_TABLE = 2 * SLICE  # from this many rows on, differences are worked out off the GUI thread

_MARKS = {
    Discrepancy.MISSING_AT_BROKER: ("missing_background", "Missing at broker"),
    Discrepancy.QUANTITY_DIFFERS: ("differs_background", "Quantity differs"),
    Discrepancy.NOT_CACHED: ("not_cached_background", "Not yet cached"),
}
BROKER_VIEW_DELAY_MS = 250  # coalesce bursts of live pushes into one repaint
EXPLAINED = 500  # lifecycles whose estimate events are read for their tooltips, per reload


def _stale_keys(key_of: Callable[[Any], Any], held: list[Any], rows: list[Any]) -> list[Any]:
    """Keys of `held` that `rows` no longer has (no Qt calls: runs on a worker thread too)."""
    keys = {key_of(r) for r in rows}
    return [key for key in map(key_of, held) if key not in keys]


class WindowController:
    """Connects a MainWindow to a Runtime (ledger + broker + sync service)."""

    def __init__(self, window: MainWindow, runtime: Runtime, *, demo: bool = False) -> None:
        self.window = window
        self.runtime = runtime
        self.demo = demo
        self.tasks = TaskGroup("window")
        self.status = ConnectionStatus(ConnectionState.CONNECTING, "Connecting to TWS…")
        self.running = False
        self.last_result: SyncResult | None = None
        self.gaps: DataGaps | None = None  # stale prices / unavailable fills (banner)
        self.last_synced: datetime | None = None
        self.loaded = asyncio.Event()
        self.attached = asyncio.Event()  # the broker and the sync service exist (after start)
        self.missing = 0  # cached positions the broker does not report (banner count)
        self._broker_loaded = False  # the broker side holds a full live view
        self._mirroring = False  # selecting the twin row in the other table
        self._selected: Lifecycle | None = None
        # (lifecycle id, id of its last event) as the history pane shows it: what the user saw.
        self._history_shown: tuple[int, int | None] | None = None
        # Tooltip lines saying from what a lifecycle's estimates come, by id, with the figures
        # they were read for: only lifecycles whose figures moved are read again.
        self._explained: dict[int, tuple[tuple[Any, ...], str]] = {}
        self._broker_keys: set[PositionKey] | None = set()
        self._marks_wanted: tuple[list[Lifecycle], list[BrokerPosition] | None] | None = None
        self._marks_task: asyncio.Task[None] | None = None
        self._marks_inputs: tuple[int, int | None] | None = None  # the tables last compared
        self._reloading = 0  # reload_everything runs in progress
        self._quantities_revision: int | None = None  # the broker table the Δ column shows
        self._mark_memo: dict[tuple[Discrepancy, str], Highlight] = {}
        self._stopping = False
        self._broker_timer = QTimer(window)
        self._broker_timer.setSingleShot(True)
        self._broker_timer.timeout.connect(self._refresh_broker_view)
        self._ticker = QTimer(window)
        self._ticker.setInterval(1000)  # the banner's age ticks every second
        self._ticker.timeout.connect(self.update_banner)
        self._icons = {
            Discrepancy.MISSING_AT_BROKER: standard_icon(
                QStyle.StandardPixmap.SP_MessageBoxWarning
            ),
            Discrepancy.QUANTITY_DIFFERS: standard_icon(QStyle.StandardPixmap.SP_MessageBoxWarning),
            Discrepancy.NOT_CACHED: standard_icon(QStyle.StandardPixmap.SP_MessageBoxInformation),
        }
        self.colours = colours_for(window.palette())
        self.summary = SummaryFeed(
            window.summary_strip,
            lambda: self.runtime.reader,
            self._summary_rows,
            lambda: self.colours,
            self.tasks,
            cost_basis_of=lambda: self.runtime.settings.cost_basis,
        )
        self.notifier = DesktopNotifier(window)
        self.charts = ChartsFeed(window, lambda: self.runtime, self.tasks)
        self.exporter = Exporter(
            window,
            window.export_actions,
            lambda: self.runtime,
            self.tasks,
            shown_account=window.shown_account,
            only_shown=window.export_only_shown,
        )
        self.statements = StatementImporter(
            window,
            window.statement_actions,
            lambda: self.runtime,
            self.tasks,
            self.reload_everything,
        )
        self.heap = HeapKeeper(window, lambda: self.running or bool(self._reloading))
        self._wire_window()
        self.apply_palette()

    # ------------------------------------------------------------------ start / stop
    async def start(self) -> None:
        """Paint the cache at once, then connect and sync in the background."""
        self._stopping = False
        self.window.database_label.setText(self.runtime.reader.location)
        self.update_banner()
        await self.reload_everything()
        self.loaded.set()
        self.update_banner()
        if not self.runtime.broker_attached:
            # Painted: now the broker stack. numpy (most of its import time) loads on a worker
            # thread; ib_insync must load here, on the loop's thread (app.runtime explains).
            await asyncio.to_thread(preload_broker_dependencies)
            self.runtime.attach_broker()
        self.attached.set()
        self._hook(self.runtime)
        await self.runtime.start()  # syncing, or viewing the process that syncs (app.ownership)
        self._ticker.start()
        self.heap.start()
        forget_module_sources()

    async def stop(self) -> None:
        """Stop syncing and release the ledger (the window stays until the app quits)."""
        self.summary.stopped = True  # a palette or filter change now must not read the ledger
        # The broker's last events while it stops (a disconnect, its final rows) would start
        # the broker-view timer again, and it would fire after the loop that runs the window's
        # tasks has stopped ("no running event loop"; seen in a CI run's teardown).
        self._stopping = True
        self._ticker.stop()
        self.heap.stop()
        self._broker_timer.stop()
        await self.notifier.detach()
        await self.tasks.cancel_all()
        await self.runtime.stop()
        # A run that finished while stopping may have queued a reload: cancel that one too.
        await self.tasks.cancel_all()
        self.runtime.close()

    def _hook(self, runtime: Runtime) -> None:
        runtime.broker.on_status(self._on_status)
        runtime.broker.on_event(self._on_event)
        runtime.service.on_run_started(self._on_run_started)
        runtime.service.on_result(self._on_result)
        runtime.ownership.on_ledger_changed(self._on_ledger_changed)
        runtime.ownership.on_took_over(lambda _previous: self.update_banner())
        self.notifier.attach(runtime)

    def _wire_window(self) -> None:
        w = self.window
        w.sync_button.clicked.connect(self.on_sync_button_clicked)
        w.mark_closed_button.clicked.connect(self.on_mark_closed_button_clicked)
        w.settings_action.triggered.connect(self.on_settings_action_triggered)
        w.account_filter.currentTextChanged.connect(self.on_filters_changed)
        w.text_filter.textChanged.connect(self.on_filters_changed)
        w.cache_table.selectionModel().selectionChanged.connect(self.on_cache_selection_changed)
        w.broker_table.selectionModel().selectionChanged.connect(self.on_broker_selection_changed)
        w.closed_table.selectionModel().selectionChanged.connect(self.on_closed_selection_changed)
        w.palette_changed.connect(self.on_window_palette_changed)

    # ------------------------------------------------------------------ slots
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
        self._on_run_started(SyncTrigger.MANUAL)
        try:
            result = await self.runtime.sync_now()
        except SyncerUnreachableError as exc:
            now = datetime.now(UTC)
            result = SyncResult(SyncTrigger.MANUAL, SyncStatus.SKIPPED, now, now, error=str(exc))
        self._on_result(result)

    def on_mark_closed_button_clicked(self) -> None:
        """Mark the selected cached position closed (asks first when the broker disagrees)."""
        refused = write_refusal(self.runtime)
        if refused is not None:
            self.tasks.spawn(tell(self.window, "Not marked closed", refused), "viewer-refusal")
            return
        if self._selected is not None and self._selected.is_open:
            # The copy the views hold now: a reload since the selection replaced the row.
            position = self._current_version(self._selected)
            if position.is_open:
                self.tasks.spawn(self.mark_selected_closed(position), "mark-closed")

    def on_settings_action_triggered(self) -> None:
        """Open the settings dialog."""
        self.tasks.spawn(self.edit_settings(), "settings")

    def on_window_palette_changed(self) -> None:
        """The system switched between a light and a dark palette."""
        self.apply_palette()

    def apply_palette(self) -> None:
        """P&L, highlight and banner colours for the palette in use (WCAG AA on both)."""
        self.colours = colours_for(self.window.palette())
        w = self.window
        for model in (w.broker_model, w.cache_model, w.closed_model, w.events_model):
            model.set_colours(self.colours)
        w.banner.set_colours(self.colours)
        self._mark_memo.clear()
        self._marks_inputs = None  # recolour the highlights even if the tables did not change
        if self.loaded.is_set():
            self.refresh_differences()
            self.summary.changed()

    def _summary_rows(self) -> tuple[list[Lifecycle], str | None, datetime | None]:
        w = self.window
        account = w.account_filter.currentText()
        chosen = None if account in ("", ALL_ACCOUNTS) else account
        return [*w.cache_model.values(), *w.closed_model.values()], chosen, self.last_synced

    def on_filters_changed(self, _text: str = "") -> None:
        """Account or text filter changed."""
        account = self.window.account_filter.currentText()
        needle = self.window.text_filter.text().strip().lower()

        def accept(row: Any) -> bool:
            if account and account not in (ALL_ACCOUNTS, row.account):
                return False
            if not needle:
                return True
            contract = row.contract
            haystack = (
                f"{row.account} {contract.symbol} {contract.local_symbol} {contract.sec_type}"
            )
            return needle in haystack.lower()

        for model in (self.window.broker_model, self.window.cache_model, self.window.closed_model):
            model.set_filter(accept)
        self._update_counts()
        if self.loaded.is_set():
            self.summary.changed()

    def on_cache_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        """Show the selected open lifecycle's history; enable Mark closed."""
        self._select_from(self.window.cache_model, selected)
        if self._selected is not None:
            broker = self.window.broker_model
            self._select_key(self.window.broker_table, broker, self._selected.key)

    def on_broker_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        """Selecting a broker row selects the same (account, conId) in the cache, and back."""
        rows = {index.row() for index in selected.indexes()}
        if rows:
            key = self.window.broker_model.key_of(self.window.broker_model.row(min(rows)))
            self._select_key(self.window.cache_table, self.window.cache_model, key)

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

    def on_closed_selection_changed(self, selected: QItemSelection, _old: QItemSelection) -> None:
        """Show the selected closed lifecycle's history."""
        self._select_from(self.window.closed_model, selected)

    def _select_from(self, model: KeyedTableModel, selected: QItemSelection) -> None:
        rows = {index.row() for index in selected.indexes()}
        position: Lifecycle | None = model.row(min(rows)) if rows else None
        self._selected = position
        self.window.mark_closed_button.setEnabled(position is not None and position.is_open)
        self.tasks.spawn(self.show_history(position), "history")

    # ------------------------------------------------------------------ broker and service
    def _on_status(self, status: ConnectionStatus) -> None:
        self.status = status
        self._broker_loaded = False
        if status.state is not ConnectionState.CONNECTED:
            # Stale rows must not pass for live ones: the broker side empties while offline.
            self.window.broker_model.reset([])
        else:
            self._schedule_broker_view(None)
        self.refresh_differences()
        self.update_banner()

    def _on_event(self, event: BrokerEvent) -> None:
        self._schedule_broker_view(event.key)

    def _on_ledger_changed(self) -> None:
        # A viewer: the process that syncs this ledger committed.
        self.tasks.spawn(self.reload_everything(), "reload")

    def _on_run_started(self, _trigger: SyncTrigger) -> None:
        self.running = True
        self.window.sync_button.setEnabled(False)
        self.window.sync_button.setText("Syncing…")
        self.update_banner()

    def _on_result(self, result: SyncResult) -> None:
        # A coalesced follow-up run, if any, announces itself through _on_run_started.
        self.running = False
        self.last_result = result
        self.gaps = note_result(self.gaps, result)
        if result.ok:
            self.last_synced = result.finished_at
        self.window.sync_button.setEnabled(True)
        self.window.sync_button.setText("Sync now")
        forget_module_sources()  # a first sync imports modules of its own
        if result.ok and result.selective and not result.market_moved:
            self.tasks.spawn(self.reload_keys(result.changed_keys), "reload-keys")
        else:
            self.tasks.spawn(self.reload_everything(), "reload")
        self._schedule_broker_view(None)
        self.update_banner()

    # ------------------------------------------------------------------ loading
    async def reload_everything(self) -> None:
        """Read the whole cache and sync log and bring every view up to date."""
        self._reloading += 1
        try:
            await self._reload_everything()
        finally:
            self._reloading -= 1
            if not self._reloading:
                self.refresh_differences()  # big tables: deferred while the reload ran

    async def _reload_everything(self) -> None:
        reader = self.runtime.reader
        rows = await reader.positions(include_closed=True)
        runs = await reader.sync_runs(200)
        stats = await reader.sync_stats()
        success = await reader.last_success()
        if success is not None and success.finished_at is not None:
            self.last_synced = max(filter(None, (self.last_synced, success.finished_at)))
        open_rows = [p for p in rows if p.is_open]
        closed = [p for p in rows if not p.is_open]
        await self._replace(self.window.cache_model, open_rows)
        await self._replace(self.window.closed_model, closed)
        self.window.runs_model.reset(runs)
        rate = stats.success_rate
        self.window.run_stats.setText(
            f"Last {stats.runs} runs: {stats.ok} ok, {stats.failed} failed, "
            f"{stats.skipped} skipped"
            + (f" · success rate {rate:.0%}" if rate is not None else "")
            + (f" · mean {stats.mean_duration_ms:.0f} ms" if stats.mean_duration_ms else "")
            + (f" · slowest {stats.max_duration_ms} ms" if stats.max_duration_ms else "")
        )
        self._update_accounts(p.account for p in rows)
        await self._update_totals()
        self.summary.changed()
        self.refresh_differences()
        self.update_banner()
        self.charts.ledger_changed()
        await self.explain_estimates()
        if self._selected is not None:  # its history (and chart) may have moved too
            fresh = self._current_version(self._selected)
            # Only if the reload still holds it (not after a switch to another database).
            if fresh is not self._selected and fresh.key == self._selected.key:
                await self.show_history(fresh)

    async def reload_keys(self, keys: Iterable[PositionKey]) -> None:
        """Reload only these keys' lifecycles (a selective sync changed just them)."""
        wanted = set(keys)
        if wanted:
            rows = await self.runtime.reader.lifecycles_for(wanted)
            open_rows = [p for p in rows if p.is_open]
            still_open = {p.key for p in open_rows}
            self.window.cache_model.remove(k for k in wanted if k not in still_open)
            self.window.cache_model.upsert(open_rows)
            self.window.closed_model.upsert(p for p in rows if not p.is_open)
            self._update_accounts(p.account for p in rows)
            await self._update_totals()
            self.summary.changed()
            self.charts.ledger_changed()
            await self.explain_estimates()
        runs = await self.runtime.reader.sync_runs(200)
        self.window.runs_model.reset(runs)
        self.refresh_differences()
        if self._selected is not None and self._selected.key in wanted:
            await self.show_history(self._current_version(self._selected))

    async def _replace(self, model: KeyedTableModel, rows: list[Any]) -> None:
        """Bring `model` to exactly `rows`, in slices; keeps selection for kept keys.

        From BIG_TABLE rows on, the passes over every row (which keys went stale; a first
        fill's order) run on a worker thread: tens of milliseconds at 20,000 rows.
        """
        held = model.values()
        if len(rows) + len(held) > BIG_TABLE:
            stale = await asyncio.to_thread(_stale_keys, model.key_of, held, rows)
        else:
            stale = _stale_keys(model.key_of, held, rows)
        if len(rows) > SLICE and len(stale) >= len(held) - SLICE:
            # A first paint of a big cache (or a new ledger): one reset is cheaper than
            # thousands of inserts and removals; its ordering runs on a worker thread.
            prepared = await asyncio.to_thread(model.prepare_reset, rows)
            model.apply_reset(prepared)
            return
        if stale:
            model.remove(stale)
        for start in range(0, len(rows), SLICE):
            model.upsert(rows[start : start + SLICE])
            await asyncio.sleep(0)  # let Qt paint and handle input between slices

    def _current_version(self, position: Lifecycle) -> Lifecycle:
        """The freshest copy of a lifecycle the views hold (it may have closed meanwhile)."""
        found: Lifecycle | None = None
        if position.is_open:
            found = self.window.cache_model.get(position.key)
            if found is not None and found.id != position.id:
                found = None
        if found is None:
            found = self.window.closed_model.get(position.id)
        return found if found is not None else position

    # ------------------------------------------------------------------ broker view
    def _schedule_broker_view(self, key: PositionKey | None) -> None:
        if self._stopping:
            return
        if self._broker_keys is not None:
            if key is None:
                self._broker_keys = None
            else:
                self._broker_keys.add(key)
        if not self._broker_timer.isActive():
            self._broker_timer.start(BROKER_VIEW_DELAY_MS)

    def _refresh_broker_view(self) -> None:
        if self._stopping:
            return
        if self._reloading and self._broker_keys is None:
            # A whole-table refresh waits for the cache reload to finish: its repaints while
            # the reload's database read runs Python on a worker thread are slow (every call
            # from the view into the model has to win the GIL back), 25-30 ms each.
            self._broker_timer.start(BROKER_VIEW_DELAY_MS)
            return
        keys, self._broker_keys = self._broker_keys, set()
        if self.status.state is not ConnectionState.CONNECTED:
            return
        broker = self.runtime.broker
        model = self.window.broker_model
        if keys is None:
            rows = [r for r in broker.live_positions() if r.quantity != 0]
            self.tasks.spawn(self._load_broker_view(rows), "broker-view")
            return
        else:
            rows = broker.live_positions(keys)
            model.remove(r.key for r in rows if r.quantity == 0)
            model.upsert(r for r in rows if r.quantity != 0)
        self.refresh_differences()

    async def _load_broker_view(self, rows: list[BrokerPosition]) -> None:
        await self._replace(self.window.broker_model, rows)
        # Only now does an empty broker side mean "not reported" rather than "not loaded yet".
        self._broker_loaded = self.status.state is ConnectionState.CONNECTED
        self.refresh_differences()

    # ------------------------------------------------------------------ presentation
    def refresh_differences(self) -> None:
        """Recolour both tables by where broker and cache disagree.

        Up to BIG_TABLE rows the comparison runs at once. Beyond, it runs in steps of a few
        milliseconds on this thread, the tables repainting in between, and is applied when it
        is done, the latest request winning: comparing 20,000 rows (and marking them all,
        before a first sync) takes 40 ms. Not on a worker thread: while a worker runs Python,
        each of a repaint's thousand calls into the models waits for the GIL (stalls of
        45-55 ms when the tables repainted during the compare).
        """
        w = self.window
        live: list[BrokerPosition] | None = None
        if self.status.state is ConnectionState.CONNECTED and self._broker_loaded:
            live = w.broker_model.values()
        self._show_broker_quantities(live)
        cached = w.cache_model.values()
        if len(cached) + len(live or ()) <= BIG_TABLE:
            self._apply_marks(self._marks(cached, live))
            return
        if self._reloading or self.running:
            # A sync is running or the cache table is being refilled: the reload that follows
            # compares once it is done (the compare's Python would compete with the sync's).
            return
        inputs = (w.cache_model.revision, w.broker_model.revision if live is not None else None)
        if inputs == self._marks_inputs and self._marks_wanted is None:
            return  # both tables as they were last compared
        self._marks_inputs = inputs
        self._marks_wanted = (cached, live)
        if self._marks_task is None or self._marks_task.done():
            self._marks_task = self.tasks.spawn(self._marks_in_background(), "differences")

    def _show_broker_quantities(self, live: list[BrokerPosition] | None) -> None:
        """The ledger side's "Δ broker" column: the broker's quantities while live."""
        revision = self.window.broker_model.revision if live is not None else None
        if revision == self._quantities_revision:
            return
        self._quantities_revision = revision
        quantities = None if live is None else {r.key: r.quantity for r in live}
        self.window.cache_model.set_broker_quantities(quantities)

    async def _marks_in_background(self) -> None:
        while self._marks_wanted is not None:
            cached, live = self._marks_wanted
            self._marks_wanted = None
            steps = self._marking(cached, live)
            marks: tuple[dict[Any, Highlight], dict[Any, Highlight], int] | None = None
            while True:  # a few milliseconds per step; the tables repaint in between
                try:
                    next(steps)
                except StopIteration as done:
                    marks = done.value
                    break
                await asyncio.sleep(0)
                if self._compare_superseded():
                    break
            if marks is not None and self._marks_wanted is None:
                self._apply_marks(marks)
                self.update_banner()  # the count of positions missing at the broker

    def _compare_superseded(self) -> bool:
        """Whether a newer compare was asked for (the running one is then dropped)."""
        return self._marks_wanted is not None

    def _marks(
        self, cached: list[Lifecycle], live: list[BrokerPosition] | None
    ) -> tuple[dict[Any, Highlight], dict[Any, Highlight], int]:
        """(cache marks, broker marks, positions missing at the broker), at once."""
        return run_steps(self._marking(cached, live))

    def _marking(
        self, cached: list[Lifecycle], live: list[BrokerPosition] | None
    ) -> Generator[None, None, tuple[dict[Any, Highlight], dict[Any, Highlight], int]]:
        """`_marks` in steps of a few milliseconds (see app.domain.discrepancy.comparing)."""
        differences = yield from comparing(cached, live)
        memo = self._mark_memo
        if len(memo) > 100_000:
            memo.clear()
        cache_marks: dict[Any, Highlight] = {}
        broker_marks: dict[Any, Highlight] = {}
        missing = 0
        for number, (key, difference) in enumerate(differences.items(), 1):
            kind = difference.kind
            # The same mark object for the same reason: re-marking an unchanged table then
            # compares by identity (cheap) in set_highlights.
            mark = memo.get((kind, difference.explanation))
            if mark is None:
                role, title = _MARKS[kind]
                colour = QColor(getattr(self.colours, role))
                mark = Highlight(colour, self._icons[kind], f"{title}: {difference.explanation}")
                memo[(kind, difference.explanation)] = mark
            if kind is not Discrepancy.NOT_CACHED:
                cache_marks[key] = mark
            if kind is not Discrepancy.MISSING_AT_BROKER:
                broker_marks[key] = mark
            if kind is Discrepancy.MISSING_AT_BROKER:
                missing += 1
            if not number % STEP:
                yield
        return cache_marks, broker_marks, missing

    def _apply_marks(self, marks: tuple[dict[Any, Highlight], dict[Any, Highlight], int]) -> None:
        cache_marks, broker_marks, self.missing = marks
        self.window.cache_model.set_highlights(cache_marks)
        self.window.broker_model.set_highlights(broker_marks)
        self._update_counts()

    def update_banner(self) -> None:
        """Repaint the banner for this second."""
        state = banner_state(
            self.status,
            running=self.running,
            last_result=self.last_result,
            last_synced=self.last_synced,
            missing=self.missing,
            now=datetime.now(UTC),
            ledger_read=self.loaded.is_set(),
            demo=self.demo,
            gaps=self.gaps,
            syncer=syncer_text(self.runtime),
        )
        self.window.banner.show_state(state)

    def _update_counts(self) -> None:
        w = self.window
        broker = w.broker_model.rowCount()
        w.broker_count.setText(
            f"{broker} positions" if self.status.state is ConnectionState.CONNECTED else "offline"
        )
        w.cache_count.setText(f"{w.cache_model.rowCount()} open")

    def _update_accounts(self, accounts: Iterable[str]) -> None:
        combo = self.window.account_filter
        known = {combo.itemText(i) for i in range(combo.count())}
        for account in sorted(set(accounts) - known):
            combo.addItem(account)

    async def _update_totals(self) -> None:
        """The Closed view's totals line, in the figure the setting `cost_basis` picks."""
        cost_basis = self.runtime.settings.cost_basis
        amounts: list[RealizedAmount] = []
        if cost_basis is CostBasis.FIFO:
            # A lifecycle row stores no FIFO sum: its events' FIFO amounts are read each time.
            amounts = await self.runtime.reader.realized_amounts(None, cost_basis)
        w = self.window
        # The models as they are now (a reload may have moved them during the read).
        w.closed_totals.setText(
            closed_totals_html(w.closed_model.values(), w.cache_model.values(), cost_basis, amounts)
        )

    async def realized_basis_changed(self) -> None:
        """The setting `cost_basis` changed: every realized total shows the other figure now."""
        await self._update_totals()
        self.summary.changed()
        self.charts.ledger_changed()

    async def explain_estimates(self) -> None:
        """Tell the position tables from what each estimated or unknown figure comes (its
        events' price sources and notes), for their tooltips."""
        w = self.window
        marked = [
            p
            for p in (*w.cache_model.values(), *w.closed_model.values())
            if p.id is not None and estimates.marked(p.pnl_basis)
        ]
        figures = {
            p.id: (p.realized_pnl, p.realized_pnl_estimated, p.pnl_basis, p.status) for p in marked
        }
        explained = self._explained
        wanted = [
            p.id for p in marked[:EXPLAINED] if explained.get(p.id, ((),))[0] != figures[p.id]
        ]
        if wanted:
            # The estimated and unknown events of these lifecycles.
            found = await self.runtime.reader.events_with_basis(wanted, estimates.MARKED)
            for pid, events in found.items():
                explained[pid] = (figures[pid], estimates.events_why(events))
        self._explained = {pid: explained[pid] for pid in figures if pid in explained}
        texts = {pid: text for pid, (_, text) in self._explained.items()}
        w.cache_model.set_explanations(
            {p.key: texts.get(p.id, estimates.SEE_HISTORY) for p in marked if p.is_open}
        )
        w.closed_model.set_explanations(
            {p.id: texts.get(p.id, estimates.SEE_HISTORY) for p in marked if not p.is_open}
        )

    # ------------------------------------------------------------------ history
    async def show_history(self, position: Lifecycle | None) -> None:
        """Events and fills of one lifecycle in the history pane."""
        w = self.window
        if position is None or position.id is None:
            w.history_title.setText("Select a position to see its history and fills.")
            self._history_shown = None
            w.events_model.reset([])
            w.fills_model.reset([])
            w.lots_model.reset([])
            self.charts.show_position(None)
            return
        reader = self.runtime.reader
        events = await reader.events(position.id)
        # IB stamps fills to the second: a fill in the very second the lifecycle opened belongs.
        since = position.opened_at.replace(microsecond=0)
        fills = await reader.fills_for(position.key, since)
        if position.closed_at is not None:
            fills = [f for f in fills if f.time <= position.closed_at]
        contract = position.contract
        w.history_title.setText(
            f"<b>{contract.local_symbol or contract.symbol}</b> in {position.account} — "
            f"{position.status.value.lower()}, opened {fmt.local_time(position.opened_at)}"
            + (f", closed {fmt.local_time(position.closed_at)}" if position.closed_at else "")
            + f" · realized {estimates.lifecycle_text(position)}"
            + (
                " <i>(not all exact: see Realized below)</i>"
                if estimates.marked(position.pnl_basis)
                else ""
            )
        )
        self._history_shown = (position.id, events[-1].id if events else None)
        w.events_model.reset(events)
        w.fills_model.reset(fills)
        # Open lots: derived here from what the pane shows (a closed lifecycle holds none).
        by_id = {f.exec_id: f for f in fills}
        w.lots_model.reset(open_lots_of(position, events, by_id) if position.is_open else [])
        self.charts.show_position(position, events, fills)

    # ------------------------------------------------------------------ Mark closed
    async def mark_selected_closed(self, position: Lifecycle) -> None:
        """Ask (when the broker still reports it), then record MARKED_CLOSED through the ledger's
        write door, which refuses when the lifecycle changed since it was shown here."""
        w = self.window
        # What the user is deciding on, taken now: a sync may book a fill (and the window reload)
        # while the dialogs below are open, and the close must not be written over that.
        seen = LifecycleVersion.of(position, await self._last_event_seen(position))
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
            await self.runtime.writer.mark_closed(request)
        except LifecycleChangedError as exc:
            refused = str(exc)
        except (MarkClosedError, ValueError, DatabaseError) as exc:
            await tell(w, "Could not mark closed", str(exc))
        if refused is not None:
            # Reload first, so the message box stands over what changed, then tell.
            await self.reload_keys([position.key])  # also the history pane, when it shows it
            self.update_banner()
            await tell(w, "Not marked closed: the position changed", refused)
            return
        await self.reload_keys([position.key])
        await self.show_history(self.window.closed_model.get(position.id))
        self.update_banner()

    async def _last_event_seen(self, position: Lifecycle) -> int | None:
        """The id of `position`'s last event as the history pane shows it (read now only when
        the pane does not show that lifecycle yet: a click before its history loaded)."""
        shown = self._history_shown
        if shown is not None and shown[0] == position.id:
            return shown[1]
        assert position.id is not None
        events = await self.runtime.reader.events(position.id)
        return events[-1].id if events else None

    # ------------------------------------------------------------------ settings
    async def edit_settings(self) -> None:
        """Settings dialog; applied at once, without a restart."""
        dialog = SettingsDialog(self.runtime.requested, self.window)
        if await result_of(dialog) != SettingsDialog.DialogCode.Accepted:
            return
        new = dialog.result_settings()
        try:
            save_settings(new)
        except OSError as exc:
            await tell(self.window, "Settings not saved", f"Could not write the settings: {exc}")
        await self.apply_settings(new)

    async def apply_settings(self, new: Settings) -> None:
        """Use `new` now: sync options in place; a new connection or ledger when those change."""
        old = self.runtime.requested
        connection = ("ib_host", "ib_port", "ib_client_id", "ib_account", "ib_timeout")
        # The demo's own ledger stays in force whatever database the user picks meanwhile.
        database_moved = self.runtime.database_override is None and (
            new.database_url != old.database_url
        )
        rebuild = database_moved or (
            self.runtime.gateway is None
            and any(getattr(new, f) != getattr(old, f) for f in connection)
        )
        if not self.runtime.broker_attached:
            await self.attached.wait()  # still starting: apply once the broker is attached
        if not rebuild:
            self.runtime.requested = new
            self.runtime.settings = Runtime.effective(
                new, self.runtime.gateway, self.runtime.database_override
            )
            self.runtime.service.apply_options(sync_options(self.runtime.settings))
            if new.cost_basis != old.cost_basis:
                await self.realized_basis_changed()
            return
        try:
            fresh = Runtime.open(
                new,
                demo=self.demo,
                gateway=self.runtime.gateway,
                database_url=self.runtime.database_override,
                command=self.runtime.ownership.command,
            )
        except DatabaseError as exc:
            await tell(self.window, "Settings not applied", str(exc))
            return
        await self.notifier.detach()
        await self.runtime.stop()
        self.runtime.close(keep_gateway=True)
        self.runtime = fresh
        self.status = ConnectionStatus(ConnectionState.CONNECTING, "Connecting to TWS…")
        self.last_result, self.last_synced, self.gaps = None, None, None
        self.window.broker_model.reset([])
        self.window.database_label.setText(fresh.reader.location)
        await self.reload_everything()
        self._hook(fresh)
        await fresh.start()
