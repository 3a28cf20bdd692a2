"""Estimates marked in the window (issue 15): an exact, an estimated and an unknown realized
figure read differently at a glance — text, italic, colour — and say why in their tooltips; and
Mark closed on a copy a sync changed is refused, reloaded, then right. Real widgets offscreen, a
real SQLite ledger, the simulator through real ib_insync."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.db import repository
from app.db.migrate import open_database
from app.domain.plan import LifecycleChange, PlannedEvent
from app.domain.values import EventKind, PnlBasis, PositionStatus, PriceSource
from app.sim import contracts as c
from app.sim.runner import SimulatorThread
from app.ui.dialogs.mark_closed import MarkClosedDialog
from app.ui.models.keyed import ESTIMATED_GAIN, GAIN, UNKNOWN, KeyedTableModel
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, ES, MSFT, at, pos, snapshot
from tests.ui.conftest import eventually, free_port
from tests.ui.test_window import ACCOUNT, book, row_of, visible_dialog

D = Decimal
DISPLAY = Qt.ItemDataRole.DisplayRole
FONT = Qt.ItemDataRole.FontRole
FOREGROUND = Qt.ItemDataRole.ForegroundRole
TIP = Qt.ItemDataRole.ToolTipRole


def _reduce(life, basis, realized, estimated, **event):
    """A REDUCED 10 → 6 change of `life` with the given basis (what the fold will write)."""
    after = replace(
        life,
        quantity=D(6),
        realized_pnl=life.realized_pnl + (realized or 0),
        realized_pnl_estimated=estimated,
        pnl_basis=basis,
    )
    planned = PlannedEvent(
        kind=EventKind.REDUCED,
        occurred_at=at(10),
        quantity_before=life.quantity,
        quantity_after=D(6),
        realized_pnl=realized,
        pnl_basis=basis,
        **event,
    )
    return LifecycleChange(life, after, (planned,))


def seed_three_bases(path: Path) -> None:
    """AAPL exact, MSFT estimated (market price), ES unknown (no price) — open, 6 left each."""
    db = open_database(path)
    try:
        commit(db, snapshot(pos(AAPL, "10", "150"), pos(MSFT, "10", "300"), pos(ES, "10", "5000")))
        rows = {p.contract.symbol: p for p in db.run_sync(repository.positions)}
        changes = [
            _reduce(
                rows["AAPL"], PnlBasis.EXACT, D(40), D(0),
                price=D(160), price_source=PriceSource.FILLS, exec_ids=("e1",),
            ),
            _reduce(
                rows["MSFT"], PnlBasis.ESTIMATED, D(80), D(80), price=D(320),
                price_source=PriceSource.MARKET, note="4 sold that no fill explains",
            ),
            _reduce(rows["ES"], PnlBasis.UNKNOWN, None, D(0), note="no price for 4 gone"),
        ]  # fmt: skip
        for change in changes:
            db.run_sync(repository.apply_manual_change, change)
    finally:
        db.close()


def _cell(model: KeyedTableModel, key, title: str):
    column = next(i for i, col in enumerate(model.columns) if col.title == title)
    return model.index(row_of(model, key), column)


def test_estimated_and_unknown_realized_figures_are_marked(make_app, qloop, tmp_path):
    """Issue 15 item 10: inferred trades looked exact — an estimate priced at market read just
    like a fill's P&L in the window, with nothing to say so but the event's price source."""
    seed_three_bases(tmp_path / "ledger.sqlite")
    app = make_app(free_port())  # offline: nothing listens there
    w = app.window

    async def scenario():
        await app.start()
        cache = w.cache_model
        exact = _cell(cache, ("DU111", AAPL.con_id), "Realized")
        estimated = _cell(cache, ("DU111", MSFT.con_id), "Realized")
        unknown = _cell(cache, ("DU111", ES.con_id), "Realized")

        assert cache.data(exact, DISPLAY) == "40.00"
        assert cache.data(exact, FONT) is None
        assert cache.data(exact, FOREGROUND).color() == GAIN
        assert cache.data(exact, TIP) is None

        assert cache.data(estimated, DISPLAY) == "≈ 80.00"
        assert cache.data(estimated, FONT).italic()
        assert cache.data(estimated, FOREGROUND).color() == ESTIMATED_GAIN != GAIN
        await eventually(lambda: "market price" in (cache.data(estimated, TIP) or ""))
        tip = cache.data(estimated, TIP)
        assert tip.startswith("Estimated: 80.00 of the 80.00 realized rests on estimates")
        assert "4 sold that no fill explains" in tip

        assert cache.data(unknown, DISPLAY) == "?"
        assert cache.data(unknown, FONT).italic()
        assert cache.data(unknown, FOREGROUND).color() == UNKNOWN
        assert "could not be priced" in cache.data(unknown, TIP)
        await eventually(lambda: "no price for 4 gone" in (cache.data(unknown, TIP) or ""))

        # Sorting by Realized still sorts by the number (the unknown's 0 below the 40 and 80).
        column = estimated.column()
        cache.sort(column, Qt.SortOrder.DescendingOrder)
        shown = [cache.data(cache.index(r, column), DISPLAY) for r in range(cache.rowCount())]
        assert shown == ["≈ 80.00", "40.00", "?"]

        # The history pane: the estimated event says from what, the title says not all exact.
        w.cache_table.selectRow(row_of(cache, ("DU111", MSFT.con_id)))
        events = w.events_model
        await eventually(lambda: events.rowCount() == 2)
        assert "≈ 80.00" in w.history_title.text() and "not all exact" in w.history_title.text()
        reduced = max(events.values(), key=lambda e: e.id)
        cell = _cell(events, reduced.id, "Realized")
        assert events.data(cell, DISPLAY) == "≈ 80.00"
        assert events.data(cell, FONT).italic()
        assert events.data(cell, FOREGROUND).color() == ESTIMATED_GAIN
        assert events.data(cell, TIP).startswith("Estimated: priced at IB's market price")
        w.cache_table.selectRow(row_of(cache, ("DU111", ES.con_id)))
        await eventually(lambda: any(e.pnl_basis is PnlBasis.UNKNOWN for e in events.values()))
        gone = max(events.values(), key=lambda e: e.id)
        cell = _cell(events, gone.id, "Realized")
        assert events.data(cell, DISPLAY) == "?"
        assert events.data(cell, TIP).startswith("Unknown: no price was available")

    qloop.run_until_complete(asyncio.wait_for(scenario(), 30))


def test_mark_closed_refused_when_a_sync_booked_a_fill_meanwhile(make_app, qloop):
    """Issue 15 item 8: the window loaded AAPL 100 @ 150; a sync then booked a fill (REDUCED
    100 → 60, realized 400); Mark closed at 155 wrote MARKED_CLOSED 100 → 0 and realized 500,
    where 700 is right. The write checked only that the row was still OPEN."""
    with SimulatorThread(None, state=book()) as sim:
        app = make_app(sim.port)
        w = app.window
        key = (ACCOUNT, c.AAPL.con_id)

        async def open_mark_closed_dialog() -> MarkClosedDialog:
            w.cache_table.selectRow(row_of(w.cache_model, key))
            await eventually(w.mark_closed_button.isEnabled)
            w.mark_closed_button.click()
            question = await eventually(lambda: visible_dialog(QMessageBox))
            question.button(QMessageBox.StandardButton.Yes).click()  # the broker still has it
            return await eventually(lambda: visible_dialog(MarkClosedDialog))

        async def scenario():
            await app.start()
            await eventually(lambda: w.broker_model.rowCount() == 3)
            dialog = await open_mark_closed_dialog()
            assert dialog.position.quantity == 100

            # While the dialog is open, a fill: the window's own sync books it.
            sim.fill(ACCOUNT, c.AAPL, -40, "160", commission=D(0))
            await eventually(lambda: w.cache_model.get(key).quantity == 60)
            dialog.price.setText("155")
            dialog.accept()

            refusal = await eventually(lambda: visible_dialog(QMessageBox))
            assert refusal.windowTitle() == "Not marked closed: the position changed"
            assert refusal.text() == (
                "AAPL changed since you looked: quantity 100 → 60, realized 0.00 → 400.00 "
                "(a sync booked a fill). Reload and decide again."
            )
            # Nothing written; the window shows what the ledger holds now.
            (life,) = app.runtime.db.run_sync(repository.lifecycles_for, [key])
            assert (life.status, life.quantity, life.realized_pnl) == (PositionStatus.OPEN, 60, 400)
            assert w.cache_model.get(key).quantity == 60
            realized = _cell(w.cache_model, key, "Realized")
            assert w.cache_model.data(realized, DISPLAY) == "400.00"
            refusal.button(QMessageBox.StandardButton.Ok).click()

            # Deciding again on what is shown now: closed at 155, 700 realized in all.
            dialog = await open_mark_closed_dialog()
            assert dialog.position.quantity == 60
            dialog.price.setText("155")
            dialog.accept()
            await eventually(lambda: w.closed_model.get(life.id) is not None)
            closed = w.closed_model.get(life.id)
            assert closed.realized_pnl == 700 and closed.realized_pnl_estimated == 300
            cell = _cell(w.closed_model, life.id, "Realized")
            assert w.closed_model.data(cell, DISPLAY) == "≈ 700.00"
            assert w.closed_model.data(cell, FONT).italic()
            assert w.closed_model.data(cell, TIP).startswith(
                "Estimated: 300.00 of the 700.00 realized rests on estimates; 400.00 is exact"
            )
            await eventually(
                lambda: "exit price you gave" in (w.closed_model.data(cell, TIP) or "")
            )
            kinds = [e.kind for e in app.runtime.db.run_sync(repository.events, life.id)]
            assert kinds == [EventKind.OPENED, EventKind.REDUCED, EventKind.MARKED_CLOSED]

        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
