"""LedgerActions' Mark closed over a real ledger and broker: refused when the lifecycle changed
since the pane showed it (LifecycleChangedError), booked when it did not."""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QMessageBox

from app.db import repository
from app.domain.values import CloseReason, EventKind, PositionStatus
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.ui.charts.feed import ChartsFeed
from app.ui.dialogs.mark_closed import MarkClosedDialog
from app.ui.presenters.history_pane import HistoryPane
from app.ui.presenters.ledger_actions import LedgerActions
from app.ui.presenters.selection import Selection
from tests.ui.conftest import eventually, visible
from tests.ui.presenters.conftest import ACCOUNT, D, book

ES = (ACCOUNT, c.ES.con_id)


async def _answer_yes_then_accept() -> None:
    """The broker still reports the position: say Yes; then accept the prefilled close."""
    question = await eventually(
        lambda: visible(QMessageBox, "The broker still reports this position")
    )
    question.button(QMessageBox.StandardButton.Yes).click()
    dialog = await eventually(lambda: visible(MarkClosedDialog))
    dialog.note.setText("closed elsewhere")
    dialog.accept()


def test_mark_closed_refuses_a_stale_version_and_books_a_fresh_one(make_parts, qloop):
    with SimulatorThread(None, state=book()) as sim:
        parts = make_parts(sim.port)
        w = parts.window
        db = parts.runtime.db
        history = HistoryPane(w, parts.holder, ChartsFeed(w, lambda: parts.runtime, parts.tasks))
        selection = Selection(w, parts.tasks, history)
        reloaded: list[list[tuple[str, int]]] = []

        async def reload_keys(keys):
            """The ledger views as the controller reloads them: read again from the ledger."""
            reloaded.append(list(keys))
            rows = await parts.runtime.reader.positions(include_closed=True)
            w.cache_model.reset([p for p in rows if p.is_open])
            w.closed_model.reset([p for p in rows if not p.is_open])

        actions = LedgerActions(
            w,
            parts.holder,
            parts.tasks,
            selection,
            history,
            reload_keys,
            lambda: None,
            lambda _trigger: None,
            lambda _result: None,
        )

        def es_lifecycles():
            return db.run_sync(repository.lifecycles_for, [ES])

        async def scenario():
            await parts.start_syncing()
            await eventually(lambda: db.run_sync(repository.last_success))
            (shown,) = es_lifecycles()
            await history.show(shown)

            # While the user looks at it, a sync books a fill on it.
            sim.fill(ACCOUNT, c.ES, -1, "5020", commission=D(2))
            await eventually(lambda: es_lifecycles()[0].quantity == -2, 15)
            task = asyncio.ensure_future(actions.mark_selected_closed(shown))
            await _answer_yes_then_accept()
            refusal = await eventually(
                lambda: visible(QMessageBox, "Not marked closed: the position changed")
            )
            assert reloaded == [[ES]]  # the views reloaded before the message box stands
            refusal.button(QMessageBox.StandardButton.Ok).click()
            await task
            (es,) = es_lifecycles()
            assert es.status is PositionStatus.OPEN and es.quantity == -2
            kinds = [e.kind for e in db.run_sync(repository.events, es.id)]
            assert EventKind.MARKED_CLOSED not in kinds

            # Shown afresh, the same close is booked.
            await history.show(es)
            task = asyncio.ensure_future(actions.mark_selected_closed(es))
            await _answer_yes_then_accept()
            await task
            assert reloaded == [[ES], [ES]]
            closed = [p for p in es_lifecycles() if p.id == es.id]
            assert closed and closed[0].status is PositionStatus.CLOSED
            assert closed[0].close_reason is CloseReason.MANUAL
            kinds = [e.kind for e in db.run_sync(repository.events, es.id)]
            assert kinds[-1] is EventKind.MARKED_CLOSED
            assert visible(QMessageBox) is None  # no refusal, no error
            # The pane now shows the closed lifecycle, its close the last event.
            assert "closed" in w.history_title.text()
            assert w.events_model.rowCount() == len(kinds)

        qloop.run_until_complete(asyncio.wait_for(scenario(), 45))
