"""Waiting, in a test that drives other processes, for what they do (no event loop to await)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(predicate: Callable[[], T], within: float, what: str, every: float = 0.02) -> T:
    """Poll `predicate()` until it is truthy and return its value; fail naming `what` after
    `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {within} s: {what}")
