"""The history pane: one lifecycle's events, fills and open lots (and its chart), as shown."""

from __future__ import annotations

from app.domain.values import Lifecycle
from app.runtime import Runtime
from app.ui import estimates
from app.ui import formatting as fmt
from app.ui.charts.feed import ChartsFeed
from app.ui.main_window import MainWindow
from app.ui.runtime_holder import RuntimeHolder


class HistoryPane:
    """Shows a lifecycle's history and remembers what it showed (what the user saw)."""

    def __init__(self, window: MainWindow, holder: RuntimeHolder, charts: ChartsFeed) -> None:
        self.window = window
        self.holder = holder
        self.charts = charts
        # (lifecycle id, id of its last event) as the history pane shows it: what the user saw.
        self._history_shown: tuple[int, int | None] | None = None

    @property
    def runtime(self) -> Runtime:
        """The runtime in force (the holder's)."""
        return self.holder.runtime

    async def show(self, position: Lifecycle | None) -> None:
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
        # Imported here: the FIFO fold is not needed before the first paint (issue 19).
        from app.domain.lots import open_lots_of

        w.lots_model.reset(open_lots_of(position, events, by_id) if position.is_open else [])
        self.charts.show_position(position, events, fills)

    async def last_event_seen(self, position: Lifecycle) -> int | None:
        """The id of `position`'s last event as the history pane shows it (read now only when
        the pane does not show that lifecycle yet: a click before its history loaded)."""
        shown = self._history_shown
        if shown is not None and shown[0] == position.id:
            return shown[1]
        assert position.id is not None
        events = await self.runtime.reader.events(position.id)
        return events[-1].id if events else None
