"""Window tests: real widgets offscreen, a qasync loop per test, the real sync stack.

pytest-qt's waitSignal does not work with qasync (STYLE.md traps), so scenarios are coroutines
run with `qloop.run_until_complete`, waiting on conditions with `eventually()`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

import pytest
import qasync

from app.runtime import Runtime
from app.settings import Settings
from app.ui.controller import WindowController
from app.ui.main_window import MainWindow

_CLOSED_LOOPS: list[asyncio.AbstractEventLoop] = []


@pytest.fixture
def qloop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop on the session's QApplication, set as the policy's loop."""
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    asyncio.set_event_loop(None)
    loop.close()
    # A closed qasync loop leaves its Qt timers registered and only kills each when it fires
    # next; if the loop's timer object were freed first, that late timer event would reach a
    # dead object and crash the process. Keep every closed loop for the whole session.
    _CLOSED_LOOPS.append(loop)
    # Free this test's widgets and loop objects while the QApplication is still alive: left to
    # the interpreter's final garbage collection, PySide6 objects can be torn down in an order
    # that aborts the process (seen as "bool_dealloc" at exit).
    qapp.processEvents()
    gc.collect()


async def eventually(condition: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll `condition()` on the loop until it is truthy; fail the test after `within` s."""
    for _ in range(int(within / 0.02)):
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {within} s")


def visible(kind: type, title: str | None = None) -> Any:
    """The shown top-level widget of type `kind` (with that window title, if given), or None."""
    from PySide6.QtWidgets import QApplication

    for widget in QApplication.topLevelWidgets():
        shown = isinstance(widget, kind) and widget.isVisible()
        if shown and (title is None or widget.windowTitle() == title):
            return widget
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class App:
    """A window + controller over a Runtime, closed after the test."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.window = MainWindow("Position Sync — test")
        self.controller = WindowController(self.window, runtime)
        self.stopped = False

    async def start(self) -> None:
        self.window.show()
        await self.controller.start()

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.controller.stop()  # stops whichever runtime the controller holds now
        self.window.close()


@pytest.fixture
def make_app(tmp_path: Any, qloop: asyncio.AbstractEventLoop) -> Iterator[Callable[..., App]]:
    """make_app(port=..., **settings) → an App (not started); stopped after the test."""
    apps: list[App] = []

    def make(port: int, **overrides: Any) -> App:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            "ib_port": port,
            "ib_client_id": 21,
            "ib_timeout": 3.0,
            "debounce_seconds": 0.1,
            "sync_interval": 3600,
        }
        values.update(overrides)
        runtime = Runtime.open(Settings(**values))
        app = App(runtime)
        apps.append(app)
        return app

    yield make
    for app in apps:
        qloop.run_until_complete(app.stop())
        app.window.deleteLater()
