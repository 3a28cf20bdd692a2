"""Fixtures every layer's tests share: a per-test asyncio loop and simulators in threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from app.sim.runner import SimulatorThread

T = TypeVar("T")

pytest_plugins = [
    # The database engines (SQLite, PostgreSQL) and their fixtures: ledger_url, pg_url, ...
    "tests.engines",
    # DESIGN rule 11 checked after every test: no simulator received an order message.
    "tests.faults.order_guard",
]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh loop set as the policy's loop (ib_insync finds it through getLoop())."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """run(coro, timeout=10): run a scenario on the test's loop, bounded."""

    def runner(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return runner


@pytest.fixture
def start_sim() -> Iterator[Callable[..., SimulatorThread]]:
    """Start simulators in background threads; all are stopped after the test."""
    started: list[SimulatorThread] = []

    def start(scenario: Any = "basic", **options: Any) -> SimulatorThread:
        thread = SimulatorThread(scenario, **options).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


ORDER_MESSAGE_IDS = frozenset({3, 4, 21, 58})
"""placeOrder, cancelOrder, exerciseOptions, reqGlobalCancel: never sent (DESIGN rule 11)."""


@pytest.fixture(autouse=True)
def _isolated_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads the developer's settings file, POSITION_SYNC_* variables or user folders."""
    import os

    for name in list(os.environ):
        if name.startswith("POSITION_SYNC_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("POSITION_SYNC_SETTINGS_FILE", str(home / "settings.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
