"""Small helpers for driving ib_insync against the simulator inside a test's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from ib_insync import IB

T = TypeVar("T")


async def connect(port: int, client_id: int, **options: Any) -> IB:
    """A read-only ib_insync connection (4 s timeout unless given)."""
    ib = IB()
    options.setdefault("timeout", 4)
    options.setdefault("readonly", True)
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, **options)
    return ib


async def off_loop(fn: Callable[[], T]) -> T:
    """Call a thread-safe simulator method without blocking this loop's socket reads."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until predicate() holds.

    Polls on purpose: the state it watches is changed by ib_insync's callbacks or by the
    simulator's thread, neither of which can set an asyncio.Event for us.
    """
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.01)
