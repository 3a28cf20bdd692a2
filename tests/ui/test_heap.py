"""Whole-heap garbage collections run when nobody is looking, never during a sync, and at the
latest after a while even for a trader who never looks away (app.ui.heap)."""

from __future__ import annotations

import gc
import linecache
import time

from PySide6.QtCore import QPoint
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QWidget

from app.ui.heap import HeapKeeper, forget_module_sources


def _whole_heap_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


def _window(qapp, *, in_front: bool) -> QWidget:  # type: ignore[no-untyped-def]
    window = QWidget()
    if in_front:
        window.show()
        window.activateWindow()
        qapp.processEvents()
        assert window.isActiveWindow()
    return window


def test_collects_while_the_window_is_in_the_background(qapp) -> None:  # type: ignore[no-untyped-def]
    window = _window(qapp, in_front=False)
    keeper = HeapKeeper(window, lambda: False, every_s=0.0)
    before = _whole_heap_collections()
    keeper.check()
    assert keeper.collections == 1
    assert _whole_heap_collections() == before + 1


def test_never_while_a_sync_runs(qapp) -> None:  # type: ignore[no-untyped-def]
    window = _window(qapp, in_front=False)
    syncing = [True]
    keeper = HeapKeeper(window, lambda: syncing[0], every_s=0.0, latest_s=0.0)
    keeper.check()
    assert keeper.collections == 0  # not even when overdue
    syncing[0] = False
    keeper.check()
    assert keeper.collections == 1


def test_at_most_once_per_interval(qapp) -> None:  # type: ignore[no-untyped-def]
    window = _window(qapp, in_front=False)
    keeper = HeapKeeper(window, lambda: False, every_s=3600.0)
    keeper.check()
    assert keeper.collections == 0
    keeper._every_s = 0.0
    keeper.check()
    keeper._every_s = 3600.0
    keeper.check()
    assert keeper.collections == 1


def test_waits_for_a_still_pointer_then_collects_when_overdue(qapp) -> None:  # type: ignore[no-untyped-def]
    window = _window(qapp, in_front=True)
    keeper = HeapKeeper(window, lambda: False, every_s=0.0, idle_s=0.2, latest_s=0.6)
    for step in range(3):  # the trader moves the pointer: not idle
        QCursor.setPos(QPoint(50 + step * 10, 60))
        keeper.check()
    assert keeper.collections == 0
    time.sleep(0.25)  # the pointer stays where it is: idle
    keeper.check()
    assert keeper.collections == 1
    started = time.monotonic()
    while keeper.collections == 1:  # always busy with the pointer: collected when overdue
        QCursor.setPos(QPoint(50 + int((time.monotonic() - started) * 1000) % 200, 70))
        keeper.check()
        assert time.monotonic() - started < 5.0, "never collected though overdue"
        time.sleep(0.05)
    assert time.monotonic() - started >= 0.5
    window.close()


def test_source_lines_read_by_the_import_hook_are_dropped() -> None:
    assert linecache.getline(__file__, 1)  # read and kept, as shiboken's hook does
    assert __file__ in linecache.cache
    forget_module_sources()
    assert __file__ not in linecache.cache
    assert linecache.getline(__file__, 1)  # a traceback can still read it again
