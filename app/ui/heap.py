"""The window's heap: whole-heap garbage collections at moments nobody is looking, and the
source lines PySide's import hook leaves behind dropped.

With 20,000 positions the window holds about 400,000 objects Python's collector tracks (rows,
contracts, the tables' keys). One whole-heap collection walks all of them while holding the GIL:
180-210 ms during which the window cannot paint (tests/bench, "whole-heap garbage collection").
Python starts one by itself after enough allocations, which can land in the middle of a sync or
a scroll. The window therefore turns those off (app.ui.app.WINDOW_GC_THRESHOLDS: young
collections still run, and they are short) and collects the whole heap here instead: when the
window is not in front or the pointer has not moved for a while, and no sync is running; at the
latest after `latest_s` even if the trader never looks away, so cyclic garbage cannot pile up.
"""

from __future__ import annotations

import gc
import linecache
import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QPoint, QTimer
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

CHECK_MS = 10_000  # how often the keeper looks
EVERY_S = 300.0  # at most one collection per five minutes
IDLE_S = 60.0  # the pointer still (or the window in the background) this long: nobody looks
LATEST_S = 1_800.0  # collected after half an hour whatever the trader does


class HeapKeeper(QObject):
    """Runs `gc.collect()` when the window is idle and `busy()` is false."""

    def __init__(
        self,
        window: QWidget,
        busy: Callable[[], bool],
        *,
        check_ms: int = CHECK_MS,
        every_s: float = EVERY_S,
        idle_s: float = IDLE_S,
        latest_s: float = LATEST_S,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._busy = busy
        self._every_s = every_s
        self._idle_s = idle_s
        self._latest_s = latest_s
        now = time.monotonic()
        self._collected_at = now
        self._pointer: QPoint = QCursor.pos()
        self._pointer_still_since = now
        self.collections = 0
        self._timer = QTimer(self)
        self._timer.setInterval(check_ms)
        self._timer.timeout.connect(self.check)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def check(self) -> None:
        """Collect now if it is due and nobody is looking (or it is overdue)."""
        now = time.monotonic()
        pointer = QCursor.pos()
        if pointer != self._pointer:
            self._pointer = pointer
            self._pointer_still_since = now
        since = now - self._collected_at
        if since < self._every_s or self._busy():
            return
        idle = not self._window.isActiveWindow() or now - self._pointer_still_since >= self._idle_s
        if idle or since >= self._latest_s:
            started = time.perf_counter()
            found = gc.collect()
            self._collected_at = time.monotonic()
            self.collections += 1
            log.debug(
                "whole-heap collection: %d unreachable objects, %.0f ms",
                found,
                (time.perf_counter() - started) * 1000,
            )


def forget_module_sources() -> None:
    """Drop the source lines PySide's import hook has read (tens of megabytes).

    Once PySide is imported, shiboken's import hook reads the source of every Python module
    imported after it (inspect.getsource, to look for `from __feature__ import`), and linecache
    keeps every line: 38 MB of a 20,000-position window's memory (tests/bench). Tracebacks read
    the files again when they need a line.
    """
    linecache.clearcache()
