"""The broker side of the window: the connection's status and the live positions table, with
bursts of live pushes coalesced into one repaint."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer

from app.domain.connection import BrokerEvent, ConnectionState, ConnectionStatus
from app.domain.values import BrokerPosition, PositionKey
from app.runtime import Runtime
from app.sync.tasks import TaskGroup, loop_running
from app.ui.main_window import MainWindow
from app.ui.presenters.differences import Differences
from app.ui.runtime_holder import RuntimeHolder
from app.ui.slicing import replace_rows
from app.ui.window_state import WindowState, connecting

BROKER_VIEW_DELAY_MS = 250  # coalesce bursts of live pushes into one repaint


class BrokerFeed:
    """Follows the current runtime's broker (through the holder) into the broker table."""

    def __init__(
        self,
        window: MainWindow,
        holder: RuntimeHolder,
        state: WindowState,
        tasks: TaskGroup,
        differences: Differences,
        banner: Callable[[], None],
    ) -> None:
        self.window = window
        self.holder = holder
        self.state = state
        self.tasks = tasks
        self.differences = differences
        self._banner = banner  # repaints the banner
        # The keys pushed since the last repaint; None: the whole table is to be read again.
        self._broker_keys: set[PositionKey] | None = set()
        self.stopping = False
        self._broker_timer = QTimer(window)
        self._broker_timer.setSingleShot(True)
        self._broker_timer.timeout.connect(self._refresh_broker_view)

    @property
    def runtime(self) -> Runtime:
        """The runtime in force (the holder's)."""
        return self.holder.runtime

    @property
    def pending(self) -> bool:
        """A repaint is scheduled (live pushes not shown yet)."""
        return self._broker_timer.isActive()

    def hook(self, runtime: Runtime) -> None:
        """Follow this runtime's broker (RuntimeHolder.on_hook)."""
        runtime.broker.on_status(self._on_status)
        runtime.broker.on_event(self._on_event)

    async def arrived(self, _fresh: Runtime) -> None:
        """A new connection (RuntimeHolder.on_arrived): nothing is known of it yet, and the
        old one's rows are gone."""
        self.state.status = connecting()
        self.window.broker_model.reset([])

    def stop(self) -> None:
        """No repaints from now on (the window's tasks are about to stop)."""
        # The broker's last events while it stops (a disconnect, its final rows) would start
        # the broker-view timer again, and it would fire after the loop that runs the window's
        # tasks has stopped ("no running event loop"; seen in a CI run's teardown).
        self.stopping = True
        self._broker_timer.stop()

    # ------------------------------------------------------------------ listeners
    def _on_status(self, status: ConnectionStatus) -> None:
        self.state.status = status
        self.state.broker_loaded = False
        if status.state is not ConnectionState.CONNECTED:
            # Stale rows must not pass for live ones: the broker side empties while offline.
            self.window.broker_model.reset([])
        else:
            self.schedule(None)
        self.differences.refresh()
        self._banner()

    def _on_event(self, event: BrokerEvent) -> None:
        self.schedule(event.key)

    # ------------------------------------------------------------------ broker view
    def schedule(self, key: PositionKey | None) -> None:
        """Repaint `key`'s row (None: the whole table) after a short delay, with any others
        pushed meanwhile."""
        if self.stopping:
            return
        if self._broker_keys is not None:
            if key is None:
                self._broker_keys = None
            else:
                self._broker_keys.add(key)
        if not self._broker_timer.isActive():
            self._broker_timer.start(BROKER_VIEW_DELAY_MS)

    def _refresh_broker_view(self) -> None:
        if self.stopping:
            return
        if not loop_running():
            # Fired between two runs of the loop (seen in a CI run: "no running event loop"
            # from the spawn below): the repaint waits for the loop to run again.
            self._broker_timer.start(BROKER_VIEW_DELAY_MS)
            return
        if self.state.reloading and self._broker_keys is None:
            # A whole-table refresh waits for the cache reload to finish: its repaints while
            # the reload's database read runs Python on a worker thread are slow (every call
            # from the view into the model has to win the GIL back), 25-30 ms each.
            self._broker_timer.start(BROKER_VIEW_DELAY_MS)
            return
        keys, self._broker_keys = self._broker_keys, set()
        if self.state.status.state is not ConnectionState.CONNECTED:
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
        self.differences.refresh()

    async def _load_broker_view(self, rows: list[BrokerPosition]) -> None:
        await replace_rows(self.window.broker_model, rows)
        # Only now does an empty broker side mean "not reported" rather than "not loaded yet".
        self.state.broker_loaded = self.state.status.state is ConnectionState.CONNECTED
        self.differences.refresh()
