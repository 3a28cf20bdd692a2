"""Awaiting a widget's next paint: the window connects only once the cached ledger is on screen.

Paint first, connect after (issue 19): the broker stack's start imports numpy on a worker thread,
then ib_insync and the client on the Qt thread. Started as soon as the rows are in the model, it
ran while Qt was still painting them — competing for the GIL and the machine's two cores, and
with numpy's pages counted in the memory at that first paint. It now waits for that paint.

Qt paints a window's dirty widgets together when the window handles its UpdateRequest event;
that event is watched on the top-level window (whose Python wrapper exists already: the first
call of a scroll area's `viewport()` costs PySide ~10 ms, which would come before the paint).
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget


class _RepaintWatch(QObject):
    """Resolves `seen` when the watched window starts repainting what is dirty."""

    def __init__(self, seen: asyncio.Future[None]) -> None:
        super().__init__()
        self.seen = seen

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.UpdateRequest and not self.seen.done():
            self.seen.set_result(None)  # its waiter resumes after this repaint has finished
        return False


async def next_paint(widget: QWidget, patience: float = 0.25) -> bool:
    """Until `widget` has been painted again (True), asking for that paint; False after
    `patience` seconds (a minimised window is not painted) or at once for a hidden widget."""
    if not widget.isVisible():
        return False
    window = widget.window()
    seen: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    watch = _RepaintWatch(seen)
    window.installEventFilter(watch)
    widget.update()
    try:
        await asyncio.wait_for(seen, patience)
    except TimeoutError:
        return False
    finally:
        window.removeEventFilter(watch)
        watch.deleteLater()
    return True
