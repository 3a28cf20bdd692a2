"""PySide must not drop references to None, True or False that it never took.

PySide6 6.12.0 does, in data() calls that answer None, in repaints of an item view and in model
resets. On Python 3.11 those objects are not immortal: a window that repaints all day counts
None's references down (about 950 per 20,000-position sync, tests/bench) until the interpreter
aborts with "Fatal Python error: none_dealloc" — at exit after a few dozen syncs, or in the
middle of a session. pyproject.toml keeps such a release out; this test fails on one.
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass
from decimal import Decimal

import pytest
from PySide6.QtCore import QEvent, QModelIndex, Qt
from PySide6.QtWidgets import QTableView

from app.ui.models.keyed import Column, KeyedTableModel

ROUNDS = 300
SLACK = 50  # other threads may take or drop a few references meanwhile; the bug drops ROUNDS+


@dataclass(frozen=True)
class Row:
    key: int
    name: str
    amount: Decimal
    flag: bool


class Rows(KeyedTableModel):
    columns = (
        Column("Name", lambda r: r.name, lambda r: r.name),
        Column("Amount", lambda r: r.amount, str, numeric=True, pnl=True),
        Column("Flag", lambda r: r.flag, lambda r: "yes" if r.flag else ""),
    )


def _counts() -> tuple[int, int, int]:
    return sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)


@pytest.fixture
def view(qapp):  # type: ignore[no-untyped-def]
    # Objects of earlier tests freed during the rounds release their own references to None (a
    # legitimate count down): windows waiting for deletion, and closed qasync loops' timers that
    # fire once more (tests/ui/conftest.py) — let those fire and free them first.
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        qapp.processEvents()
        qapp.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        time.sleep(0.01)
    gc.collect()
    model = Rows(lambda r: r.key)
    model.reset([Row(k, f"row {k}", Decimal(k % 5 - 2), bool(k % 2)) for k in range(60)])
    table = QTableView()
    table.setModel(model)
    table.resize(500, 400)
    table.show()
    qapp.processEvents()
    yield table
    table.close()
    table.deleteLater()


def _not_counted_down(before: tuple[int, int, int], after: tuple[int, int, int]) -> None:
    for name, was, now in zip(("None", "True", "False"), before, after, strict=True):
        assert now >= was - SLACK, f"{name} lost {was - now} references in {ROUNDS} rounds"


def test_answering_none_from_data_keeps_none_alive(view: QTableView) -> None:
    model = view.model()
    index = model.index(1, 0)
    before = _counts()
    for _ in range(ROUNDS):
        assert index.data(Qt.ItemDataRole.FontRole) is None  # through C++, back into Python
        assert model.headerData(0, Qt.Orientation.Vertical) is None
    _not_counted_down(before, _counts())


def test_repaints_and_resets_keep_none_alive(view: QTableView, qapp) -> None:  # type: ignore[no-untyped-def]
    model = view.model()
    assert isinstance(model, Rows)
    before = _counts()
    for _ in range(ROUNDS):
        view.viewport().repaint()
        view.horizontalHeader().viewport().repaint()
        model.beginResetModel()
        model.endResetModel()
        qapp.processEvents()
    _not_counted_down(before, _counts())
    assert model.rowCount(QModelIndex()) == 60
