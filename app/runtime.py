"""The running app without its window: ledger, broker, sync service, and the demo gateway.

The composition root shared by the command line and the window: the only place that picks the
concrete broker (ib_insync) and ledger (SQLAlchemy) behind app.sync's ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Self

from app.db.database import Database
from app.db.errors import DatabaseError
from app.db.migrate import open_database
from app.db.reader import LedgerReader
from app.db.store import LedgerStore
from app.db.writer import LedgerWriter
from app.domain.connection import ConnectionState, ConnectionStatus
from app.domain.manual import MarkClosedRequest
from app.domain.plan import ReconcileOptions
from app.domain.values import SyncTrigger
from app.ownership import DEFAULT_COMMAND, Ownership
from app.settings import Settings, user_data_dir
from app.sync.results import SyncResult
from app.sync.service import PositionSyncService, SyncOptions

if TYPE_CHECKING:
    # Imported when first needed (attach_broker, the demo): ib_insync, eventkit and numpy take
    # a third of a second to import, which the window spends after its first paint instead.
    from app.broker.adapter import IbBroker
    from app.sim.runner import SimulatorThread

log = logging.getLogger(__name__)

DEMO_INTERVAL = 15.0


def demo_database_url() -> str:
    """The demo's own ledger: `demo.sqlite` beside the real `ledger.sqlite` in the user data
    folder. `--demo` writes its made-up accounts here, never into the user's real ledger (whose
    positions would otherwise stay there, open, after connecting to the real TWS); it is kept
    between demo runs so the demo can also be tried offline, and may be deleted at any time."""
    return f"sqlite:///{user_data_dir() / 'demo.sqlite'}"


GC_THRESHOLDS = (100_000, 50, 100)
"""The collector's thresholds while a Runtime is open.

A sync of 20,000 positions allocates a few hundred thousand short-lived objects while the
process holds tens of thousands of long-lived ones (the ledger copy, the broker's rows, the
window's models). At Python's default (700, 10, 10) the collector walks that whole heap several
times per sync: 0.3-0.4 s of the 1 s budget (tests/bench). Almost none of these objects form
cycles, so young objects are collected 100x less often. Restored when the last Runtime closes.
"""

_gc_lock = threading.Lock()
_gc_users: list[tuple[int, int, int]] = []  # the thresholds before, once per user


@contextlib.contextmanager
def heap_friendly_gc(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> Iterator[None]:
    """`thresholds` for the duration; a use inside another keeps the outer one's thresholds
    (the window sets its own around every Runtime it opens), and the last one out restores
    the process's own value."""
    with _gc_lock:
        if not _gc_users:
            gc_before = gc.get_threshold()
            gc.set_threshold(*thresholds)
        else:
            gc_before = _gc_users[0]
        _gc_users.append(gc_before)
    try:
        yield
    finally:
        with _gc_lock:
            before = _gc_users.pop()
            if not _gc_users:
                gc.set_threshold(*before)


# States after which waiting longer for a first connection is pointless.
_SETTLED = frozenset(
    {ConnectionState.CONNECTED, ConnectionState.DISCONNECTED, ConnectionState.CLIENT_ID_IN_USE,
     ConnectionState.IB_LOST}
)  # fmt: skip


def preload_broker_dependencies() -> None:
    """Import the slowest of the broker client's dependencies ahead of attach_broker(), on a
    worker thread if wanted (the window: after its first paint, staying responsive).

    Only modules that do not touch asyncio at import: eventkit (under ib_insync) takes
    `asyncio.get_event_loop()` when imported and keeps it as its main loop, so ib_insync itself
    must be imported on the thread whose loop it will use (attach_broker does). numpy, which
    eventkit imports, is most of the cost and is safe anywhere. The reconciliation (and its
    fold), which app.db.store and app.db.manual import when first used, comes too: not needed
    to paint the cached ledger, needed by the first sync.
    """
    import numpy  # noqa: F401

    import app.domain.reconcile  # noqa: F401


def sync_options(settings: Settings) -> SyncOptions:
    """The service's options from the user's settings."""
    return SyncOptions(
        enabled=settings.enabled,
        interval=settings.sync_interval,
        debounce=settings.debounce_seconds,
        on_trade=settings.sync_on_trade,
        on_position_update=settings.sync_on_position_update,
        reconcile=ReconcileOptions(
            mark_missing_as_closed=settings.mark_missing_as_closed,
            calculate_realized_pnl=settings.calculate_realized_pnl,
        ),
    )


@dataclass
class Runtime:
    """Everything a sync needs, built from settings; `close()` releases it all."""

    settings: Settings
    """What is in force: the user's settings, pointed at the demo gateway in demo mode."""
    requested: Settings
    """The user's settings, as the settings dialog edits and saves them."""
    db: Database
    reader: LedgerReader
    """Every read of the ledger (the window, the API, the notifier): snapshots, no lock."""
    writer: LedgerWriter
    """Every write of the ledger: the sync service's (its LedgerPort) and the window's."""
    gateway: SimulatorThread | None = None
    database_override: str | None = None
    """The ledger in force instead of the settings' `database_url` (the demo's own), if any."""
    ownership: Ownership = field(default_factory=lambda: Ownership(None))
    """Whether this process syncs the ledger or views it (one syncer per SQLite file)."""
    _broker: IbBroker | None = field(default=None, repr=False)
    _service: PositionSyncService | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)
    _gc: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        demo: bool = False,
        gateway: SimulatorThread | None = None,
        database_url: str | None = None,
        attach: bool = True,
        command: str = DEFAULT_COMMAND,
    ) -> Self:
        """Open (create, back up, migrate) the ledger; with `demo`, start the demo gateway
        (or reuse `gateway`, one started earlier, when settings are applied again).

        `database_url` replaces the settings' ledger while this runtime runs (the demo's own,
        demo_database_url()); `requested` keeps the user's, so saving settings never stores it.

        With `attach` false, the broker client and the sync service are not built yet (nor their
        modules imported): the window paints the ledger first, then calls attach_broker().

        On a SQLite file, this process syncs only if it gets the file's sync lock; otherwise it
        is a viewer (app.ownership). `command` names this process to the others
        ("position-sync window", "position-sync sync --watch").

        Blocking (migrations): call it before the loop runs, or accept a short pause.
        Raises app.db.errors.DatabaseError.
        """
        owned = gateway is None
        if demo and gateway is None:
            from app.sim.runner import start_demo

            _, gateway = start_demo()
        requested = settings
        settings = cls.effective(settings, gateway, database_url)
        try:
            db = open_database(settings.database_url)
        except BaseException:
            if gateway is not None and owned:
                gateway.stop()
            raise
        try:
            ownership = Ownership(db.path, command)
        except OSError as exc:
            db.close()
            if gateway is not None and owned:
                gateway.stop()
            raise DatabaseError(
                f"{db.location}: cannot open its sync lock file ({exc.strerror}); check the "
                "folder's permissions",
                location=db.path,
            ) from exc
        # One store behind both doors: the reader shares the OPEN lifecycles the writer's syncs
        # keep (app.db.store.OpenPositions), the window's fast path after every sync.
        store = LedgerStore(db)
        reader, writer = LedgerReader(db, store.kept), LedgerWriter(store)
        runtime = cls(settings, requested, db, reader, writer, gateway, database_url, ownership)
        runtime._gc.enter_context(heap_friendly_gc())
        if attach:
            runtime.attach_broker()
        return runtime

    @property
    def viewer(self) -> bool:
        """Whether another process syncs this ledger (this one reads it and asks that one)."""
        return self.ownership.viewer

    async def start(self) -> None:
        """Start syncing (the service, and the endpoint other processes ask for syncs), or, as a
        viewer, watching the ledger and the syncer (taking over when it exits)."""
        await self.ownership.start(self.service, self.writer)

    async def sync_now(self) -> SyncResult:
        """A manual sync: here, or asked of the syncing process by a viewer.

        Raises app.sync.remote.SyncerUnreachableError when a viewer cannot reach the syncer.
        """
        if self.viewer:
            return await self.ownership.sync_now()
        return await self.service.sync_positions(SyncTrigger.MANUAL)

    async def mark_closed(self, request: MarkClosedRequest) -> None:
        """The user's Mark closed, written only if the lifecycle is still `request.seen`: here,
        or by the syncing process when this one is a viewer (app.ownership).

        Raises app.domain.manual.LifecycleChangedError (nothing written) when it changed since,
        MarkClosedError for a close that cannot be, app.db.errors.DatabaseError when the write
        fails here, and app.sync.remote.SyncerUnreachableError when a viewer cannot reach the
        syncer.
        """
        if self.viewer:
            await self.ownership.mark_closed(request)
        else:
            await self.writer.mark_closed(request)

    async def stop(self) -> None:
        """Stop syncing or watching (a run in progress is awaited, not torn mid-commit)."""
        await self.ownership.stop()
        if self._service is not None:
            await self._service.stop()

    @property
    def broker_attached(self) -> bool:
        """Whether the broker client and the sync service exist yet (attach_broker)."""
        return self._service is not None

    @property
    def broker(self) -> IbBroker:
        """The broker client (after attach_broker)."""
        if self._broker is None:
            raise RuntimeError("the broker is not attached yet (Runtime.attach_broker)")
        return self._broker

    @property
    def service(self) -> PositionSyncService:
        """The sync service (after attach_broker)."""
        if self._service is None:
            raise RuntimeError("the sync service is not attached yet (Runtime.attach_broker)")
        return self._service

    def attach_broker(self) -> None:
        """Build the broker client and the sync service (idempotent); not started yet."""
        if self._service is not None:
            return
        from app.broker.adapter import IbBroker

        settings = self.settings
        broker = IbBroker(
            settings.ib_host,
            settings.ib_port,
            client_id=settings.ib_client_id,
            account=settings.ib_account,
            timeout=settings.ib_timeout,
            tws_timezone=settings.tws_timezone,
        )
        options = sync_options(settings)
        if self.gateway is not None:
            # The demo's position that vanishes silently shows only in a full download: do one
            # with every periodic sync so its warning appears within the first minute.
            options = replace(options, refresh_every=DEMO_INTERVAL)
        self._broker = broker
        self._service = PositionSyncService(broker, self.writer, options)

    @staticmethod
    def effective(
        settings: Settings, gateway: SimulatorThread | None, database_url: str | None = None
    ) -> Settings:
        """The settings in force: the user's, pointed at the demo gateway when there is one
        and at `database_url` (the demo's own ledger) when given.

        The demo's vanishing position shows only in a full sync, so the demo runs one every
        DEMO_INTERVAL seconds: the warning appears within the first minute.
        """
        if database_url is not None:
            settings = settings.model_copy(update={"database_url": database_url})
        if gateway is None:
            return settings
        return settings.model_copy(
            update={
                "ib_host": "127.0.0.1",
                "ib_port": gateway.port,
                "sync_interval": min(settings.sync_interval, DEMO_INTERVAL),
            }
        )

    async def first_connection(self) -> ConnectionStatus:
        """Start the broker and wait (up to the connect timeout) for its first settled state."""
        settled = asyncio.Event()

        def watch(status: ConnectionStatus) -> None:
            if status.state in _SETTLED:
                settled.set()

        self.broker.on_status(watch)
        await self.broker.start()
        try:
            await asyncio.wait_for(settled.wait(), self.settings.ib_timeout + 2.0)
        except TimeoutError:
            log.warning("no answer from TWS at %s:%s", self.settings.ib_host, self.settings.ib_port)
        return self.broker.status

    def close(self, *, keep_gateway: bool = False) -> None:
        """Close the database and stop the demo gateway unless kept (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.db.close()
        finally:
            # Only now: closing the database checkpoints its WAL, a write no other process may
            # make at the same time.
            self.ownership.release()
            self._gc.close()
            if self.gateway is not None and not keep_gateway:
                self.gateway.stop()
