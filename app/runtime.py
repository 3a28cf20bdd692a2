"""The running app without its window: ledger, broker, sync service, and the demo gateway.

The composition root shared by the command line and the window: the only place that picks the
concrete broker (ib_insync) and ledger (SQLAlchemy) behind app.sync's ports.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Self

from app.broker.adapter import IbBroker
from app.db.database import Database
from app.db.migrate import open_database
from app.db.store import LedgerStore
from app.domain.connection import ConnectionState, ConnectionStatus
from app.domain.plan import ReconcileOptions
from app.settings import Settings
from app.sim.runner import SimulatorThread, start_demo
from app.sync.service import PositionSyncService, SyncOptions

log = logging.getLogger(__name__)

DEMO_INTERVAL = 15.0

# States after which waiting longer for a first connection is pointless.
_SETTLED = frozenset(
    {ConnectionState.CONNECTED, ConnectionState.DISCONNECTED, ConnectionState.CLIENT_ID_IN_USE,
     ConnectionState.IB_LOST}
)  # fmt: skip


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
    db: Database
    broker: IbBroker
    service: PositionSyncService
    gateway: SimulatorThread | None = None
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, demo: bool = False) -> Self:
        """Open (create, back up, migrate) the ledger; with `demo`, start the demo gateway.

        Blocking: call it before the event loop runs. Raises app.db.errors.DatabaseError.
        """
        gateway: SimulatorThread | None = None
        if demo:
            port, gateway = start_demo()
            # The demo's vanishing position shows up only in a full sync: run one every
            # DEMO_INTERVAL seconds so the warning appears within the first minute.
            settings = settings.model_copy(
                update={
                    "ib_host": "127.0.0.1",
                    "ib_port": port,
                    "sync_interval": min(settings.sync_interval, DEMO_INTERVAL),
                }
            )
        try:
            db = open_database(settings.database_url)
        except BaseException:
            if gateway is not None:
                gateway.stop()
            raise
        broker = IbBroker(
            settings.ib_host,
            settings.ib_port,
            client_id=settings.ib_client_id,
            account=settings.ib_account,
            timeout=settings.ib_timeout,
        )
        service = PositionSyncService(broker, LedgerStore(db), sync_options(settings))
        return cls(settings, db, broker, service, gateway)

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

    def close(self) -> None:
        """Close the database and stop the demo gateway (idempotent; after the loop stops)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.db.close()
        finally:
            if self.gateway is not None:
                self.gateway.stop()
