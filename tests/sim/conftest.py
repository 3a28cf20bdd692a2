"""Fixtures for the simulator tests (`loop` and `start_sim` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.sim.runner import SimulatorThread


@pytest.fixture
def basic(start_sim: Callable[..., SimulatorThread]) -> SimulatorThread:
    return start_sim("basic")
