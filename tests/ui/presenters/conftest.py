"""Presenter tests: one presenter at a time over its real parts — a real MainWindow offscreen,
a RuntimeHolder over a real Runtime (SQLite ledger file, ib_insync client) against the embedded
simulator — without the WindowController."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from app.runtime import Runtime
from app.settings import Settings
from app.sim import contracts as c
from app.sim.state import SimState
from app.sync.tasks import TaskGroup
from app.ui.main_window import MainWindow
from app.ui.runtime_holder import RuntimeHolder
from app.ui.window_state import WindowState

D = Decimal
ACCOUNT = "DU7000009"
AAPL_SHARES = D(100)


def book(*, aapl: Decimal = AAPL_SHARES, es: bool = True) -> SimState:
    """Three holdings (AAPL, MSFT, a short ES future); fewer or other quantities on request."""
    state = SimState()
    state.add_account(ACCOUNT, "USD")
    state.set_position(ACCOUNT, c.AAPL, aapl, D(150), D(152))
    state.set_position(ACCOUNT, c.MSFT, D("0.3"), D(310), D(415))
    if es:
        state.set_position(ACCOUNT, c.ES, D(-1), D(250000), D(5010))
    return state


class Parts:
    """What a presenter is built from: the window, the holder, the shared state and tasks."""

    def __init__(self, runtime: Runtime) -> None:
        self.window = MainWindow("Position Sync — presenter test")
        self.holder = RuntimeHolder(runtime)
        self.state = WindowState()
        self.tasks = TaskGroup("presenter-test")
        self.stopped = False

    @property
    def runtime(self) -> Runtime:
        return self.holder.runtime

    async def start_syncing(self) -> None:
        """As the controller starts: attach the broker, hook the subscribers, start the service."""
        await self.holder.attach_broker()
        self.holder.hook()
        await self.runtime.service.start()

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.tasks.cancel_all()
        if self.runtime.broker_attached:
            await self.runtime.service.stop()  # stops the broker too
        self.runtime.close()


@pytest.fixture
def make_parts(tmp_path: Any, qloop: asyncio.AbstractEventLoop) -> Iterator[Callable[..., Parts]]:
    """make_parts(port, **settings) → Parts over a fresh Runtime (one ledger file per test)."""
    made: list[Parts] = []

    def make(port: int, **overrides: Any) -> Parts:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            "ib_port": port,
            "ib_client_id": 23,
            "ib_timeout": 3.0,
            "debounce_seconds": 0.1,
            "sync_interval": 3600,
        }
        values.update(overrides)
        parts = Parts(Runtime.open(Settings(**values)))
        made.append(parts)
        return parts

    yield make
    for parts in made:
        qloop.run_until_complete(parts.stop())
        parts.window.close()
        parts.window.deleteLater()
