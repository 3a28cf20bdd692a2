"""Start-up imports with the garbage collector paused (the window's first paint comes sooner).

Importing the app's modules (SQLAlchemy, pydantic, PySide6 and the app's own) allocates hundreds
of thousands of objects that all stay alive — classes, functions, module dicts. With the default
thresholds the collector runs about 200 young collections meanwhile, and a whole-heap one,
tracing that growing heap again and again to free almost nothing: ~80 ms of CPU on the 2-core
benchmark machine, a tenth of the window's time from launch to its first paint. The commands'
modules (`main`, building the parser) and the window's (`gui`) are imported inside
`collector_paused()`; the collector runs again after, the window with its own thresholds
(app.ui.app.WINDOW_GC_THRESHOLDS).

What was allocated meanwhile is frozen (`gc.freeze()`) before the collector runs again: those
~130,000 objects (modules, classes, functions) live as long as the process, and its first young
collection would otherwise trace them all at once (~40 ms, before the window's first paint), and
every whole-heap collection after again. Frozen objects are still freed by reference counting;
only a reference cycle made while importing would stay (a one-off, never growing). `gc.freeze()`
freezes every object of the process, not only the imports': it is done only in a process started
to run one command (`claim_process`: the console script, `python -m app`, the bundle — `main()`
without argv). A program that calls `main(argv)` itself (the tests) keeps its own objects, and
their garbage cycles, collectable.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


class _Process:
    own = False  # claim_process() was called: a process started to run one command


def claim_process() -> None:
    """This process was started to run one command: its start-up objects may be frozen."""
    _Process.own = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic garbage collection inside; in a claimed process what it allocated is frozen;
    the collector is enabled again after, unless it was off before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if _Process.own:
            gc.freeze()  # the modules' objects: never traced again (see the module's docstring)
        if was_enabled:
            gc.enable()
