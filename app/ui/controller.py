"""WindowController: wires the window to its presenters over the runtime holder.

It builds the presenters (app/ui/presenters), connects the window's signals to them, starts and
stops the sync stack, and reloads the ledger views (the cache, closed and sync-log tables) when
a sync or a change asks for it. What the presenters share is in WindowState; the Runtime in
force, and applying settings to it, is the RuntimeHolder's.

Everything here runs on the GUI thread (qasync drives asyncio from Qt's loop); database work goes
to the database thread through `await db.run(...)`, broker work is asyncio I/O, and big model
updates are sliced so the event loop never stalls for long.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from app.domain.series import RealizedAmount
from app.domain.values import CostBasis, Lifecycle, PositionKey, SyncTrigger
from app.runtime import Runtime
from app.settings import Settings
from app.sync.results import SyncResult
from app.sync.tasks import TaskGroup
from app.ui.banner import note_result
from app.ui.charts.feed import ChartsFeed
from app.ui.closed_totals import closed_totals_html
from app.ui.exporting import Exporter
from app.ui.heap import HeapKeeper, forget_module_sources
from app.ui.main_window import ALL_ACCOUNTS, MainWindow
from app.ui.notifications import DesktopNotifier
from app.ui.painting import next_paint
from app.ui.palette import colours_for
from app.ui.presenters.banner import BannerPresenter
from app.ui.presenters.broker_feed import BrokerFeed
from app.ui.presenters.differences import Differences
from app.ui.presenters.estimate_notes import EstimateNotes
from app.ui.presenters.history_pane import HistoryPane
from app.ui.presenters.ledger_actions import LedgerActions
from app.ui.presenters.selection import Selection
from app.ui.presenters.settings import SettingsPresenter
from app.ui.runtime_holder import RuntimeHolder
from app.ui.slicing import replace_rows
from app.ui.statements import StatementImporter
from app.ui.summary_strip import SummaryFeed
from app.ui.viewer import syncer_text
from app.ui.window_state import WindowState

log = logging.getLogger(__name__)


class WindowController:
    """Connects a MainWindow to a Runtime (ledger + broker + sync service)."""

    def __init__(self, window: MainWindow, runtime: Runtime, *, demo: bool = False) -> None:
        self.window = window
        self.holder = RuntimeHolder(runtime, demo=demo)
        self.demo = demo
        self.tasks = TaskGroup("window")
        self.state = WindowState()
        self.colours = colours_for(window.palette())
        self.banner = BannerPresenter(
            window, self.state, demo=demo, syncer=lambda: syncer_text(self.runtime)
        )
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
        self.differences = Differences(
            window, self.state, self.tasks, lambda: self.colours, self.banner.update
        )
        self.broker_feed = BrokerFeed(
            window, self.holder, self.state, self.tasks, self.differences, self.banner.update
        )
        self.history = HistoryPane(window, self.holder, self.charts)
        self.selection = Selection(window, self.tasks, self.history)
        self.estimate_notes = EstimateNotes(window, self.holder)
        self.ledger_actions = LedgerActions(
            window,
            self.holder,
            self.tasks,
            self.selection,
            self.history,
            self.reload_keys,
            self.banner.update,
            self._on_run_started,
            self._on_result,
        )
        self.settings = SettingsPresenter(window, self.holder, self.tasks)
        self.heap = HeapKeeper(window, lambda: self.state.running or bool(self.state.reloading))
        self._subscribe()
        self._wire_window()
        self.apply_palette()

    @property
    def runtime(self) -> Runtime:
        """The runtime in force (the holder's: a settings change may replace it)."""
        return self.holder.runtime

    async def apply_settings(self, new: Settings) -> None:
        """Use `new` now (the settings presenter: in place, or a fresh runtime)."""
        await self.settings.apply(new)

    # ------------------------------------------------------------------ start / stop
    async def start(self) -> None:
        """Paint the cache at once, then connect and sync in the background."""
        self.broker_feed.stopping = False
        self.window.database_label.setText(self.runtime.reader.location)
        self.banner.update()
        await self.reload_everything()
        self.state.loaded.set()
        self.banner.update()
        await next_paint(self.window.cache_table)  # on screen before connecting
        await self.holder.attach_broker()
        self.holder.hook()
        await self.runtime.start()  # syncing, or viewing the process that syncs (app.ownership)
        self.banner.start()
        self.heap.start()
        forget_module_sources()

    async def stop(self) -> None:
        """Stop syncing and release the ledger (the window stays until the app quits)."""
        self.summary.stopped = True  # a palette or filter change now must not read the ledger
        self.broker_feed.stop()
        self.banner.stop()
        self.heap.stop()
        await self.notifier.detach()
        await self.tasks.cancel_all()
        await self.runtime.stop()
        # A run that finished while stopping may have queued a reload: cancel that one too.
        await self.tasks.cancel_all()
        self.runtime.close()

    def _subscribe(self) -> None:
        """Follow the runtime in force through the holder. Subscribed in this order, which is
        the order listeners of one event run in (the views before the notifier)."""
        h = self.holder
        h.on_hook(self.broker_feed.hook)
        h.on_hook(self._hook_service)
        h.on_hook(self.notifier.attach)
        h.on_leaving(lambda _old: self.notifier.detach())
        h.on_arrived(self.broker_feed.arrived)
        h.on_arrived(self._runtime_arrived)
        h.on_basis_changed(self.realized_basis_changed)

    def _hook_service(self, runtime: Runtime) -> None:
        runtime.service.on_run_started(self._on_run_started)
        runtime.service.on_result(self._on_result)
        runtime.ownership.on_ledger_changed(self._on_ledger_changed)
        runtime.ownership.on_took_over(lambda _previous: self.banner.update())

    def _on_ledger_changed(self) -> None:
        # A viewer: the process that syncs this ledger committed. The syncer: a viewer's Mark
        # closed was written here.
        self.tasks.spawn(self.reload_everything(), "reload")

    async def _runtime_arrived(self, fresh: Runtime) -> None:
        """A new connection or ledger: nothing synced yet; read the new ledger."""
        s = self.state
        s.last_result, s.last_synced, s.gaps = None, None, None
        self.window.database_label.setText(fresh.reader.location)
        await self.reload_everything()

    def _wire_window(self) -> None:
        w = self.window
        w.sync_button.clicked.connect(self.ledger_actions.on_sync_button_clicked)
        w.mark_closed_button.clicked.connect(self.ledger_actions.on_mark_closed_button_clicked)
        w.settings_action.triggered.connect(self.settings.on_settings_action_triggered)
        w.account_filter.currentTextChanged.connect(self.on_filters_changed)
        w.text_filter.textChanged.connect(self.on_filters_changed)
        selection = self.selection
        w.cache_table.selectionModel().selectionChanged.connect(
            selection.on_cache_selection_changed
        )
        w.broker_table.selectionModel().selectionChanged.connect(
            selection.on_broker_selection_changed
        )
        w.closed_table.selectionModel().selectionChanged.connect(
            selection.on_closed_selection_changed
        )
        w.palette_changed.connect(self.on_window_palette_changed)

    # ------------------------------------------------------------------ slots
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
        self.differences.recolour()
        if self.state.loaded.is_set():
            self.differences.refresh()
            self.summary.changed()

    def _summary_rows(self) -> tuple[list[Lifecycle], str | None, datetime | None]:
        w = self.window
        account = w.account_filter.currentText()
        chosen = None if account in ("", ALL_ACCOUNTS) else account
        return [*w.cache_model.values(), *w.closed_model.values()], chosen, self.state.last_synced

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
        self.differences.update_counts()
        if self.state.loaded.is_set():
            self.summary.changed()

    # ------------------------------------------------------------------ sync service
    def _on_run_started(self, _trigger: SyncTrigger) -> None:
        self.state.running = True
        self.window.sync_button.setEnabled(False)
        self.window.sync_button.setText("Syncing…")
        self.banner.update()

    def _on_result(self, result: SyncResult) -> None:
        # A coalesced follow-up run, if any, announces itself through _on_run_started.
        s = self.state
        s.running = False
        s.last_result = result
        s.gaps = note_result(s.gaps, result)
        if result.ok:
            s.last_synced = result.finished_at
        self.window.sync_button.setEnabled(True)
        self.window.sync_button.setText("Sync now")
        forget_module_sources()  # a first sync imports modules of its own
        if result.ok and result.selective and not result.market_moved:
            self.tasks.spawn(self.reload_keys(result.changed_keys), "reload-keys")
        else:
            self.tasks.spawn(self.reload_everything(), "reload")
        self.broker_feed.schedule(None)
        self.banner.update()

    # ------------------------------------------------------------------ loading
    async def reload_everything(self) -> None:
        """Read the whole cache and sync log and bring every view up to date."""
        self.state.reloading += 1
        try:
            await self._reload_everything()
        finally:
            self.state.reloading -= 1
            if not self.state.reloading:
                self.differences.refresh()  # big tables: deferred while the reload ran

    async def _reload_everything(self) -> None:
        reader = self.runtime.reader
        rows = await reader.positions(include_closed=True)
        runs = await reader.sync_runs(200)
        stats = await reader.sync_stats()
        success = await reader.last_success()
        if success is not None and success.finished_at is not None:
            s = self.state
            s.last_synced = max(filter(None, (s.last_synced, success.finished_at)))
        open_rows = [p for p in rows if p.is_open]
        closed = [p for p in rows if not p.is_open]
        await replace_rows(self.window.cache_model, open_rows)
        await replace_rows(self.window.closed_model, closed)
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
        self.differences.refresh()
        self.banner.update()
        self.charts.ledger_changed()
        await self.estimate_notes.explain_estimates()
        selected = self.selection.selected
        if selected is not None:  # its history (and chart) may have moved too
            fresh = self.selection.current_version(selected)
            # Only if the reload still holds it (not after a switch to another database).
            if fresh is not selected and fresh.key == selected.key:
                await self.history.show(fresh)

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
            await self.estimate_notes.explain_estimates()
        runs = await self.runtime.reader.sync_runs(200)
        self.window.runs_model.reset(runs)
        self.differences.refresh()
        selected = self.selection.selected
        if selected is not None and selected.key in wanted:
            await self.history.show(self.selection.current_version(selected))

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
