"""Fixtures for the simulator tests: a per-test event loop and simulators in threads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.sim.runner import SimulatorThread


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh loop set as the policy's loop (ib_insync reads it through getLoop())."""
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
def start_sim() -> Iterator[Callable[..., SimulatorThread]]:
    """Start simulators in background threads; all are stopped after the test."""
    started: list[SimulatorThread] = []

    def start(scenario: str | None = "basic", **options: Any) -> SimulatorThread:
        thread = SimulatorThread(scenario, **options).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def basic(start_sim: Callable[..., SimulatorThread]) -> SimulatorThread:
    return start_sim("basic")
