"""RuntimeHolder: the window's current Runtime, and applying settings to it.

Settings apply in place when they can (sync options, the cost basis); a new connection or ledger
needs a fresh Runtime: the holder opens it, stops and closes the old one and tells its
subscribers, which follow the fresh one through it (`on_hook`) instead of each being re-wired by
the controller. No Qt here: the window's presenters subscribe, the holder knows none of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.db.errors import DatabaseError
from app.runtime import Runtime, preload_broker_dependencies, sync_options
from app.settings import Settings

CONNECTION = ("ib_host", "ib_port", "ib_client_id", "ib_account", "ib_timeout")
"""The settings whose change needs a new broker client (outside the demo)."""


class NotApplied(Exception):
    """The settings' new ledger could not be opened; the runtime in force is kept, untouched.
    The message is the database's own (app.db.errors.DatabaseError)."""


Hook = Callable[[Runtime], None]
Step = Callable[[Runtime], Awaitable[None]]


class RuntimeHolder:
    """Owns the Runtime in force; subscribers follow it across swaps."""

    def __init__(self, runtime: Runtime, *, demo: bool = False) -> None:
        self.runtime = runtime
        self.demo = demo
        self.attached = asyncio.Event()  # the broker and the sync service exist (after start)
        self._hooks: list[Hook] = []
        self._leaving: list[Step] = []
        self._arrived: list[Step] = []
        self._basis_changed: list[Callable[[], Awaitable[None]]] = []

    # ------------------------------------------------------------------ subscribing
    def on_hook(self, hook: Hook) -> None:
        """`hook(runtime)` once each runtime's broker is attached: follow its broker and
        service (called in the order subscribed, which is the order their listeners run)."""
        self._hooks.append(hook)

    def on_leaving(self, step: Step) -> None:
        """`await step(old)` before a replaced runtime stops (its disconnect is no news)."""
        self._leaving.append(step)

    def on_arrived(self, step: Step) -> None:
        """`await step(fresh)` once a fresh runtime is in force, before it is hooked and
        started (views empty what belonged to the old one and read the new ledger)."""
        self._arrived.append(step)

    def on_basis_changed(self, step: Callable[[], Awaitable[None]]) -> None:
        """`await step()` when the setting `cost_basis` changed (applied in place)."""
        self._basis_changed.append(step)

    # ------------------------------------------------------------------ start
    async def attach_broker(self) -> None:
        """Build the broker client and the sync service, if the runtime has none yet."""
        if not self.runtime.broker_attached:
            # Painted: now the broker stack. numpy (most of its import time) loads on a worker
            # thread; ib_insync must load here, on the loop's thread (app.runtime explains).
            await asyncio.to_thread(preload_broker_dependencies)
            self.runtime.attach_broker()
        self.attached.set()

    def hook(self) -> None:
        """Every subscriber follows the current runtime's broker and service."""
        for hook in self._hooks:
            hook(self.runtime)

    # ------------------------------------------------------------------ settings
    def needs_new_runtime(self, new: Settings) -> bool:
        """Whether `new` changes the ledger or (outside the demo) the connection."""
        old = self.runtime.requested
        # The demo's own ledger stays in force whatever database the user picks meanwhile.
        database_moved = self.runtime.database_override is None and (
            new.database_url != old.database_url
        )
        return database_moved or (
            self.runtime.gateway is None
            and any(getattr(new, f) != getattr(old, f) for f in CONNECTION)
        )

    async def apply(self, new: Settings) -> None:
        """Use `new` now: sync options in place; a new connection or ledger when those change.

        Raises NotApplied when the new ledger cannot be opened (the runtime in force is then
        kept, untouched).
        """
        old = self.runtime.requested
        rebuild = self.needs_new_runtime(new)
        if not self.runtime.broker_attached:
            await self.attached.wait()  # still starting: apply once the broker is attached
        if not rebuild:
            self.runtime.requested = new
            self.runtime.settings = Runtime.effective(
                new, self.runtime.gateway, self.runtime.database_override
            )
            self.runtime.service.apply_options(sync_options(self.runtime.settings))
            if new.cost_basis != old.cost_basis:
                for changed in self._basis_changed:
                    await changed()
            return
        try:
            fresh = Runtime.open(
                new,
                demo=self.demo,
                gateway=self.runtime.gateway,
                database_url=self.runtime.database_override,
                command=self.runtime.ownership.command,
            )
        except DatabaseError as exc:
            raise NotApplied(str(exc)) from exc
        for leaving in self._leaving:
            await leaving(self.runtime)
        await self.runtime.stop()
        self.runtime.close(keep_gateway=True)
        self.runtime = fresh
        for arrived in self._arrived:
            await arrived(fresh)
        self.hook()
        await fresh.start()
