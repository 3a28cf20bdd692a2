"""Tooltips saying from what each estimated or unknown realized figure comes (its events' price
sources and notes), read for the lifecycles whose figures moved."""

from __future__ import annotations

from typing import Any

from app.runtime import Runtime
from app.ui import estimates
from app.ui.main_window import MainWindow
from app.ui.runtime_holder import RuntimeHolder

EXPLAINED = 500  # lifecycles whose estimate events are read for their tooltips, per reload


class EstimateNotes:
    """Keeps the position tables' estimate tooltips up to date."""

    def __init__(self, window: MainWindow, holder: RuntimeHolder) -> None:
        self.window = window
        self.holder = holder
        # Tooltip lines saying from what a lifecycle's estimates come, by id, with the figures
        # they were read for: only lifecycles whose figures moved are read again.
        self._explained: dict[int, tuple[tuple[Any, ...], str]] = {}

    @property
    def runtime(self) -> Runtime:
        """The runtime in force (the holder's)."""
        return self.holder.runtime

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
