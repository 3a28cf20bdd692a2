"""What the sync service needs from the broker and the ledger, as protocols.

The service depends on these shapes only; the composition root (app.cli, app.ui) plugs in
app.broker's IB adapter and app.db's repository, and tests may plug in the real ones too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.records import RunOutcome
from app.domain.values import BrokerSnapshot, PositionKey, SyncTrigger


class IncompleteSnapshotError(Exception):
    """The broker could not deliver a complete snapshot (DESIGN rule 1); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerUnavailableError(IncompleteSnapshotError):
    """Not connected (TWS closed, refused, client id in use, or IB connectivity lost)."""


class ConnectionState(StrEnum):
    """The broker connection as the banner tells it."""

    DISCONNECTED = "disconnected"  # TWS not reachable; retrying
    CONNECTING = "connecting"
    CONNECTED = "connected"
    IB_LOST = "ib_lost"  # 1100: TWS is up but lost its link to IB; syncing paused
    CLIENT_ID_IN_USE = "client_id_in_use"  # 326: another API client holds our client id


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A connection state with a human explanation (what to do, when it matters)."""

    state: ConnectionState
    message: str = ""


class BrokerEventKind(StrEnum):
    """A live push from the broker that should trigger a (debounced) sync."""

    POSITION = "position"  # position or portfolio row changed
    EXECUTION = "execution"  # a fill or its commission report arrived


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    """One live push; `key` lets the service sync just that contract."""

    kind: BrokerEventKind
    key: PositionKey | None


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

    async def snapshot(self, scope: frozenset[PositionKey] | None = None) -> BrokerSnapshot:
        """A complete snapshot, or raise IncompleteSnapshotError naming the reason."""
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
