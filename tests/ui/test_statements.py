"""The window's File → Import IB statement… and Fetch statement: the CLI's import through a file
dialog opened with `open()`, a progress dialog while it runs off the Qt thread, a summary, the
views reloaded; a bad file refused with nothing changed; Fetch offered only with a token and run
against a local fake Flex Web Service on a real socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QMessageBox, QProgressDialog

from app.db import repository
from app.db.migrate import open_database
from app.domain.values import PnlBasis
from app.flex import service
from tests.db.test_repository import commit
from tests.domain.ledger_fixture import AAPL, pos, snapshot
from tests.flex.builder import StatementXml, document, write
from tests.flex.fake_service import QUERY, TOKEN, FakeFlexService
from tests.flex.test_import import BUY, DAY, SALE
from tests.ui.conftest import eventually, free_port
from tests.ui.test_window import visible_dialog


def missed_sale_ledger(path: Path) -> None:
    """AAPL 100 synced, then 60 the next day with no fills: an estimated sale."""
    with open_database(path) as db:
        commit(db, snapshot(pos(AAPL, "100", "149.51", market="150"), minutes=5))
        commit(db, snapshot(pos(AAPL, "60", "149.51", market="161"), minutes=DAY + 5))


def aapl(app):
    (life,) = [
        p
        for p in app.runtime.db.run_sync(repository.positions, include_closed=True)
        if p.contract.con_id == AAPL.con_id
    ]
    return life


def test_import_shows_progress_then_a_summary_and_reloads(make_app, qloop, tmp_path):
    missed_sale_ledger(tmp_path / "ledger.sqlite")
    statement = write(tmp_path / "nov.xml", StatementXml("DU111").trade(BUY).trade(SALE))
    app = make_app(free_port())
    w = app.window
    importer = app.controller.statements

    async def scenario():
        await app.start()
        assert [a.text() for a in w.statement_actions] == [
            "Import IB statement…",
            "Fetch statement",
        ]
        assert not importer.fetch_action.isEnabled()  # no flex_token set
        w.statement_actions[0].trigger()
        dialog = await eventually(lambda: importer.dialog)
        await eventually(dialog.isVisible)
        assert dialog.windowModality() == Qt.WindowModality.WindowModal  # open(), not exec()
        dialog.setDirectory(str(tmp_path))
        dialog.findChild(QLineEdit, "fileNameEdit").setText(statement.name)
        dialog.accept()
        box = await eventually(lambda: importer.summary)
        await eventually(box.isVisible)
        text = box.text()
        assert "2 new, 0 already known" in text
        assert "USD 459.6 → 418.5965 (-41.0035); estimated part 459.6 → 0" in text
        assert aapl(app).pnl_basis is PnlBasis.EXACT
        shown = w.cache_table.model()
        assert shown.rowCount() >= 1  # the views were reloaded from the ledger
        box.button(QMessageBox.StandardButton.Ok).click()
        await eventually(lambda: importer.summary is None)

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_a_bad_file_is_refused_and_changes_nothing(make_app, qloop, tmp_path):
    missed_sale_ledger(tmp_path / "ledger.sqlite")
    bad = tmp_path / "cut.xml"
    bad.write_text(document(StatementXml("DU111").trade(BUY))[:300])
    app = make_app(free_port())
    importer = app.controller.statements

    async def scenario():
        await app.start()
        before = aapl(app)
        task = asyncio.ensure_future(importer.import_paths([bad]))
        box = await eventually(lambda: visible_dialog(QMessageBox))
        assert f"{bad}: truncated" in box.text() and "Nothing was changed" in box.text()
        box.button(QMessageBox.StandardButton.Ok).click()
        assert await task is None
        assert aapl(app) == before
        assert importer.progress is None and not visible_dialog(QProgressDialog)

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_fetch_runs_off_the_qt_thread_with_progress(make_app, qloop, tmp_path, monkeypatch):
    missed_sale_ledger(tmp_path / "ledger.sqlite")
    fake = FakeFlexService(
        statement=document(StatementXml("DU111").trade(BUY).trade(SALE)).encode()
    )
    fake.start()
    fake.pending = 2
    monkeypatch.setattr(service, "BACKOFF_START", 0.3)
    app = make_app(free_port(), flex_token=TOKEN, flex_query_id=QUERY, flex_url=fake.url)
    importer = app.controller.statements

    async def scenario():
        await app.start()
        assert importer.fetch_action.isEnabled()
        importer.fetch_action.trigger()
        progress = await eventually(lambda: importer.progress)
        # IB's "in progress" answer reaches the dialog while the loop keeps running.
        await eventually(lambda: "Statement generation in progress" in progress.labelText())
        box = await eventually(lambda: importer.summary)
        assert "2 new" in box.text()
        assert TOKEN not in box.text()
        box.button(QMessageBox.StandardButton.Ok).click()
        await eventually(lambda: importer.summary is None)
        assert aapl(app).pnl_basis is PnlBasis.EXACT

    try:
        qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
    finally:
        fake.stop()
