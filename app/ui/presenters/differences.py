"""Where broker and cache disagree, shown: row colours and icons, the ledger side's "Δ broker"
column, the tables' counts and the banner's count of positions missing at the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QStyle

from app.domain.connection import ConnectionState
from app.domain.discrepancy import STEP, Discrepancy, comparing, run_steps
from app.domain.values import BrokerPosition, Lifecycle
from app.sync.tasks import TaskGroup
from app.ui.main_window import MainWindow
from app.ui.models.keyed import Highlight
from app.ui.palette import Colours
from app.ui.resources import standard_icon
from app.ui.slicing import BIG_TABLE
from app.ui.window_state import WindowState

_MARKS = {
    Discrepancy.MISSING_AT_BROKER: ("missing_background", "Missing at broker"),
    Discrepancy.QUANTITY_DIFFERS: ("differs_background", "Quantity differs"),
    Discrepancy.NOT_CACHED: ("not_cached_background", "Not yet cached"),
}

Marks = tuple[dict[Any, Highlight], dict[Any, Highlight], int]
"""(cache marks, broker marks, positions missing at the broker)."""


class Differences:
    """Compares the two tables and marks them (the latest request wins)."""

    def __init__(
        self,
        window: MainWindow,
        state: WindowState,
        tasks: TaskGroup,
        colours: Callable[[], Colours],
        banner: Callable[[], None],
    ) -> None:
        self.window = window
        self.state = state
        self.tasks = tasks
        self._colours = colours
        self._banner = banner  # repaints the banner (its count of missing positions)
        self._marks_wanted: tuple[list[Lifecycle], list[BrokerPosition] | None] | None = None
        self._marks_task: asyncio.Task[None] | None = None
        self._marks_inputs: tuple[int, int | None] | None = None  # the tables last compared
        self._quantities_revision: int | None = None  # the broker table the Δ column shows
        self._mark_memo: dict[tuple[Discrepancy, str], Highlight] = {}
        self._icons = {
            Discrepancy.MISSING_AT_BROKER: standard_icon(
                QStyle.StandardPixmap.SP_MessageBoxWarning
            ),
            Discrepancy.QUANTITY_DIFFERS: standard_icon(QStyle.StandardPixmap.SP_MessageBoxWarning),
            Discrepancy.NOT_CACHED: standard_icon(QStyle.StandardPixmap.SP_MessageBoxInformation),
        }

    def recolour(self) -> None:
        """The palette changed: the next refresh builds its marks in the new colours."""
        self._mark_memo.clear()
        self._marks_inputs = None  # recolour the highlights even if the tables did not change

    def refresh(self) -> None:
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
        if self.state.status.state is ConnectionState.CONNECTED and self.state.broker_loaded:
            live = w.broker_model.values()
        self._show_broker_quantities(live)
        cached = w.cache_model.values()
        if len(cached) + len(live or ()) <= BIG_TABLE:
            self._apply_marks(self._marks(cached, live))
            return
        if self.state.reloading or self.state.running:
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
            marks: Marks | None = None
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
                self._banner()  # the count of positions missing at the broker

    def _compare_superseded(self) -> bool:
        """Whether a newer compare was asked for (the running one is then dropped)."""
        return self._marks_wanted is not None

    def _marks(self, cached: list[Lifecycle], live: list[BrokerPosition] | None) -> Marks:
        """(cache marks, broker marks, positions missing at the broker), at once."""
        return run_steps(self._marking(cached, live))

    def _marking(
        self, cached: list[Lifecycle], live: list[BrokerPosition] | None
    ) -> Generator[None, None, Marks]:
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
                colour = QColor(getattr(self._colours(), role))
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

    def _apply_marks(self, marks: Marks) -> None:
        cache_marks, broker_marks, self.state.missing = marks
        self.window.cache_model.set_highlights(cache_marks)
        self.window.broker_model.set_highlights(broker_marks)
        self.update_counts()

    def update_counts(self) -> None:
        """The tables' row counts (the broker side says "offline" while not connected)."""
        w = self.window
        broker = w.broker_model.rowCount()
        w.broker_count.setText(
            f"{broker} positions"
            if self.state.status.state is ConnectionState.CONNECTED
            else "offline"
        )
        w.cache_count.setText(f"{w.cache_model.rowCount()} open")
