"""What the sync service needs from the broker and the ledger, as protocols.

The service depends on these shapes only; the composition root (app.cli, app.ui) plugs in
app.broker's IB adapter and app.db's repository, and tests may plug in the real ones too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from app.domain.connection import (
    BrokerEvent,
    BrokerEventKind,
    BrokerUnavailableError,
    ConnectionState,
    ConnectionStatus,
    IncompleteSnapshotError,
)
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.records import RunOutcome
from app.domain.values import BrokerPosition, BrokerSnapshot, PositionKey, SyncTrigger

__all__ = [
    "BrokerEvent",
    "BrokerEventKind",
    "BrokerPort",
    "BrokerUnavailableError",
    "ConnectionState",
    "ConnectionStatus",
    "IncompleteSnapshotError",
    "LedgerPort",
]


class BrokerPort(Protocol):
    """A read-only broker connection that produces complete snapshots."""

    @property
    def status(self) -> ConnectionStatus:
        """The connection's current state."""
        ...

    async def start(self) -> None:
        """Begin connecting (and keep reconnecting with backoff) in the background."""
        ...

    async def stop(self) -> None:
        """Disconnect and stop reconnecting."""
        ...

    async def snapshot(
        self, scope: frozenset[PositionKey] | None = None, *, refresh: bool = False
    ) -> BrokerSnapshot:
        """A complete snapshot, or raise IncompleteSnapshotError naming the reason.

        Without `refresh` the adapter may reuse what the live subscription delivered since its
        last complete snapshot; with it, positions and account data an earlier snapshot already
        used are downloaded again (the only way to see a position that vanished without a
        push), while an answer no snapshot used yet (the connect's own) counts as fresh.
        """
        ...

    def live_positions(self, keys: Iterable[PositionKey] | None = None) -> list[BrokerPosition]:
        """The live subscription's current rows (a view for the window; never synced from)."""
        ...

    def on_status(self, callback: Callable[[ConnectionStatus], None]) -> None:
        """Call `callback` on every connection state change (after connect: a full resync)."""
        ...

    def on_event(self, callback: Callable[[BrokerEvent], None]) -> None:
        """Call `callback` for every live position/portfolio/execution push."""
        ...


class LedgerPort(Protocol):
    """The local ledger, as the sync service uses it."""

    async def commit_snapshot(
        self,
        snapshot: BrokerSnapshot,
        options: ReconcileOptions,
        trigger: SyncTrigger,
        started_at: datetime,
    ) -> tuple[SyncPlan, int]:
        """Reconcile against the cache and commit plan + run row in one transaction."""
        ...

    async def record_run(self, outcome: RunOutcome) -> int:
        """Record a run that changed nothing (failed or skipped)."""
        ...
