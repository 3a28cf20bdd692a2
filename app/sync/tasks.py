"""A small registry for background coroutines: keeps a reference, logs failures, cancels all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def loop_running() -> bool:
    """An asyncio loop runs in this thread now. A Qt timer can fire while none does: qasync's
    run_until_complete processes Qt events once more after its loop has stopped (qasync 0.28,
    `QEventLoop.run_until_complete`), and a task cannot be started then."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class TaskGroup:
    """Background tasks of one owner. asyncio keeps only weak references to tasks (RUF006)."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start `coro` now; its failure is logged, not lost."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_all(self) -> None:
        """Cancel every task and wait until each has finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
