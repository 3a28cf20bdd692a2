"""One syncing process per SQLite ledger: the lock holder syncs; every other process views.

Two processes writing one SQLite file (the window and `sync --watch`, two windows) risk SQLite's
WAL-reset corruption (below 3.51.3). So a process that opens a SQLite ledger file first tries
its sync lock (app.db.sync_lock):

- **Syncer** (it got the lock): syncs as always, and listens on loopback for the viewers' sync
  and Mark closed requests (app.sync.remote), its address recorded in the lock file.
- **Viewer** (another process holds it): never writes — no sync, no run rows, no statement
  import (the window says which process owns writes). It reads the ledger, reloads when the
  syncer commits (`PRAGMA data_version`, polled every POLL_S), asks the syncer when the user asks
  for a sync or marks a position closed, and tries the lock every POLL_S: when the syncer exits
  (however: the OS drops its lock) the viewer takes over — it becomes the syncer, starts its sync
  service (whose connect triggers a full sync at once) and tells its listeners.

PostgreSQL and in-memory SQLite take no file lock: every process syncs, as before (PostgreSQL
serialises writers with advisory locks, app.db.concurrency).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from app.db.data_version import DataVersion
from app.db.sync_lock import SyncHolder, SyncLock, read_holder
from app.db.writer import LedgerWriter
from app.domain.manual import MarkClosedRequest
from app.domain.values import SyncTrigger
from app.sync.remote import (
    SyncEndpoint,
    SyncerUnreachableError,
    request_mark_closed,
    request_sync,
)
from app.sync.results import SyncResult
from app.sync.service import PositionSyncService
from app.sync.tasks import TaskGroup

log = logging.getLogger(__name__)

POLL_S = 1.0
"""Seconds between a viewer's looks at the ledger (did the syncer commit?) and at the lock."""
REMOTE_SYNC_TIMEOUT_S = 180.0
"""How long a viewer waits for the syncer's answer (a connect, then a big snapshot)."""
REMOTE_CLOSE_TIMEOUT_S = 30.0
"""How long a viewer waits for the syncer to write a Mark closed (behind a sync's commit)."""
RECORD_WAIT_S = 5.0
"""How long a viewer waits for a new syncer to publish its endpoint (it just took the lock)."""
DEFAULT_COMMAND = "position-sync"


class Role(StrEnum):
    """What this process does with its ledger."""

    SYNCER = "syncer"
    VIEWER = "viewer"


class Ownership:
    """This process's role for one ledger, and the viewer's watch over the syncer."""

    def __init__(self, database: Path | None, command: str = DEFAULT_COMMAND) -> None:
        """Try the lock of the SQLite file `database` (None: PostgreSQL or in memory, no lock).

        Raises OSError when the lock file cannot be created.
        """
        self.database = database
        self.command = command
        self.started_at = datetime.now(UTC)
        self._lock = SyncLock.try_acquire(database) if database is not None else None
        self.role = Role.SYNCER if database is None or self._lock is not None else Role.VIEWER
        self.holder: SyncHolder | None = None
        """The process that syncs, while this one is a viewer (as its lock file says)."""
        self.previous: SyncHolder | None = None
        """The syncer this process took over from, once it has."""
        if self.role is Role.VIEWER:
            assert database is not None
            self.holder = read_holder(database)
        self._service: PositionSyncService | None = None
        self._writer: LedgerWriter | None = None
        self._endpoint: SyncEndpoint | None = None
        self._tasks = TaskGroup("ownership")
        self._changed: list[Callable[[], None]] = []
        self._took_over: list[Callable[[SyncHolder | None], None]] = []

    @property
    def viewer(self) -> bool:
        """Whether another process syncs this ledger (this one only reads it)."""
        return self.role is Role.VIEWER

    def syncing_process(self) -> str:
        """Who syncs the ledger, for people: `pid 1234 (position-sync sync --watch)`."""
        if self.role is Role.SYNCER:
            return f"pid {os.getpid()} ({self.command})"
        return self.holder.describe() if self.holder is not None else "another process"

    def on_ledger_changed(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another process committed to the ledger (a viewer), or when a
        viewer's Mark closed was written here (the syncer)."""
        self._changed.append(callback)

    def on_took_over(self, callback: Callable[[SyncHolder | None], None]) -> None:
        """Call `callback(previous syncer)` when this viewer becomes the syncer."""
        self._took_over.append(callback)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, service: PositionSyncService, writer: LedgerWriter) -> None:
        """A syncer serves requests and starts `service`; a viewer starts watching."""
        self._service, self._writer = service, writer
        if self.role is Role.SYNCER:
            await self.serve(service, writer)
            await service.start()
        else:
            self._tasks.spawn(self._watch(), "watch")

    async def serve(self, service: PositionSyncService, writer: LedgerWriter) -> None:
        """Take other processes' sync and Mark closed requests for `service` and `writer` (a
        syncer holding the file lock), and record how to reach this process in the lock file.
        Idempotent."""
        self._service, self._writer = service, writer
        if self._lock is None or self._endpoint is not None:
            return
        endpoint = SyncEndpoint(
            lambda: service.sync_positions(SyncTrigger.MANUAL), self._close_for_a_viewer
        )
        port = await endpoint.start()
        self._endpoint = endpoint
        self._lock.publish(
            SyncHolder(os.getpid(), self.command, self.started_at, port, endpoint.token)
        )

    async def stop(self) -> None:
        """Stop watching and serving (the caller stops the service; release() drops the lock)."""
        await self._tasks.cancel_all()
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            await endpoint.stop()

    def release(self) -> None:
        """Drop the file lock (after the database is closed: its close checkpoints the WAL)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # ------------------------------------------------------------------ sync requests
    async def sync_now(self, answer_within: float = REMOTE_SYNC_TIMEOUT_S) -> SyncResult:
        """A manual sync: run here by a syncer; asked of the syncing process by a viewer.

        Raises SyncerUnreachableError when the syncer cannot be reached or does not answer.
        """
        if self.role is Role.SYNCER:
            if self._service is None:
                raise RuntimeError("the sync service is not started")
            return await self._service.sync_positions(SyncTrigger.MANUAL)
        holder = await self._published_holder()
        assert holder.port is not None and holder.token is not None
        return await request_sync(holder.port, holder.token, answer_within)

    async def mark_closed(
        self, request: MarkClosedRequest, answer_within: float = REMOTE_CLOSE_TIMEOUT_S
    ) -> None:
        """The user's Mark closed: written here by a syncer; asked of the syncing process by a
        viewer, which writes it with the same version check.

        Raises LifecycleChangedError / MarkClosedError as the write does, and
        SyncerUnreachableError when a viewer cannot reach the syncer or it does not answer.
        """
        if self.role is Role.SYNCER:
            if self._writer is None:
                raise RuntimeError("the ledger's writer is not started")
            await self._writer.mark_closed(request)
            return
        holder = await self._published_holder()
        assert holder.port is not None and holder.token is not None
        await request_mark_closed(holder.port, holder.token, request, answer_within)

    async def _close_for_a_viewer(self, request: MarkClosedRequest) -> None:
        """A viewer's Mark closed, written here; then this process's own views are told, as a
        viewer is of another process's commit (they did not make this write, so nothing else
        would reload them before the next sync)."""
        assert self._writer is not None
        await self._writer.mark_closed(request)
        self._tell_changed()

    async def _published_holder(self) -> SyncHolder:
        assert self.database is not None
        deadline = asyncio.get_running_loop().time() + RECORD_WAIT_S
        while True:
            holder = read_holder(self.database)
            if holder is not None and holder.port is not None and holder.token is not None:
                self.holder = holder
                return holder
            if self.role is Role.SYNCER:
                raise SyncerUnreachableError("this process took over syncing meanwhile")
            if asyncio.get_running_loop().time() >= deadline:
                raise SyncerUnreachableError(
                    f"the lock file of {self.database} names no reachable syncing process"
                )
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ the viewer's watch
    async def _watch(self) -> None:
        assert self.database is not None
        versions = DataVersion(self.database)
        try:
            seen = await asyncio.to_thread(versions.version)
            while True:
                await asyncio.sleep(POLL_S)
                try:
                    lock = SyncLock.try_acquire(self.database)
                except OSError as exc:
                    log.warning("could not try the sync lock of %s: %s", self.database, exc)
                    lock = None
                if lock is not None:
                    versions.close()
                    await self._take_over(lock)
                    return
                self.holder = read_holder(self.database) or self.holder
                version = await asyncio.to_thread(versions.version)
                if version is not None and version != seen:
                    seen = version
                    self._tell_changed()
        finally:
            versions.close()

    async def _take_over(self, lock: SyncLock) -> None:
        previous = self.holder
        self._lock = lock
        self.role = Role.SYNCER
        self.holder = None
        self.previous = previous
        log.warning(
            "took over syncing %s: %s exited",
            self.database,
            previous.describe() if previous is not None else "the syncing process",
        )
        for callback in self._took_over:
            try:
                callback(previous)
            except Exception:
                log.exception("a take-over listener failed")
        # Its last commit may have come after this viewer's last look.
        self._tell_changed()
        assert self._service is not None and self._writer is not None
        await self.serve(self._service, self._writer)
        await self._service.start()  # connecting triggers a full sync (PositionSyncService)

    def _tell_changed(self) -> None:
        for callback in self._changed:
            try:
                callback()
            except Exception:
                log.exception("a ledger change listener failed")
