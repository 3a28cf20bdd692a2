"""Which full syncs ask TWS for every position again, and which reuse the live subscription.

DESIGN ("Budgets"): while connected, a periodic sync need not download again what the live
position subscription already delivered; every other full sync (start-up, reconnect, Sync now,
the CLI) does, and a periodic one does too once `refresh_every` seconds have passed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.domain.plan import SyncPlan
from app.domain.values import BrokerSnapshot, SyncTrigger
from app.sync.ports import ConnectionState, ConnectionStatus
from app.sync.service import PositionSyncService, SyncOptions


class Broker:
    status = ConnectionStatus(ConnectionState.CONNECTED, "connected")

    def __init__(self) -> None:
        self.asked: list[tuple[bool, bool]] = []  # (full, refresh)

    async def snapshot(self, scope: Any = None, *, refresh: bool = False) -> BrokerSnapshot:
        self.asked.append((scope is None, refresh))
        return BrokerSnapshot(datetime.now(UTC), frozenset({"DU1"}), scope=scope)


class Ledger:
    async def commit_snapshot(self, snapshot: BrokerSnapshot, *args: Any) -> tuple[SyncPlan, int]:
        return SyncPlan(synced_at=snapshot.taken_at), 1

    async def record_run(self, outcome: Any) -> int:
        return 1


def test_periodic_syncs_reuse_the_live_positions_between_refreshes(run) -> None:
    broker = Broker()
    options = SyncOptions(enabled=False, refresh_every=3600)
    service = PositionSyncService(broker, Ledger(), options)  # type: ignore[arg-type]

    async def scenario() -> None:
        await service.sync_positions(SyncTrigger.PERIODIC)  # nothing downloaded yet: refresh
        await service.sync_positions(SyncTrigger.PERIODIC)
        await service.sync_positions(SyncTrigger.MANUAL)
        await service.sync_positions(SyncTrigger.PERIODIC)
        await service.sync_positions(SyncTrigger.STARTUP)
        await service.sync_positions(SyncTrigger.RECONNECT)
        await service.sync_positions(SyncTrigger.POSITION_UPDATE, {("DU1", 1)})
        service.apply_options(SyncOptions(enabled=False, refresh_every=0.0))
        await service.sync_positions(SyncTrigger.PERIODIC)  # the refresh is due again

    run(scenario())
    assert broker.asked == [
        (True, True), (True, False), (True, True), (True, False), (True, True), (True, True),
        (False, False), (True, True),
    ]  # fmt: skip


@pytest.mark.parametrize("status", ["failed", "skipped"])
def test_a_failed_refresh_does_not_count(run, status) -> None:
    """Only a committed refresh restarts the clock."""
    from app.sync.ports import BrokerUnavailableError, IncompleteSnapshotError

    broker = Broker()
    fail = {"failed": IncompleteSnapshotError("no positionEnd"), "skipped": None}[status]

    async def failing(scope: Any = None, *, refresh: bool = False) -> BrokerSnapshot:
        broker.asked.append((scope is None, refresh))
        raise fail or BrokerUnavailableError("TWS not running")

    service = PositionSyncService(broker, Ledger(), SyncOptions(enabled=False))  # type: ignore[arg-type]

    async def scenario() -> None:
        broker.snapshot = failing  # type: ignore[method-assign]
        await service.sync_positions(SyncTrigger.PERIODIC)
        await service.sync_positions(SyncTrigger.PERIODIC)

    run(scenario())
    assert broker.asked == [(True, True), (True, True)]


def test_after_a_failed_sync_the_next_periodic_one_asks_for_everything(run) -> None:
    """Regression: positions TWS reported only to a fresh request while syncs were failing (a
    full disk) never reached the ledger, since the periodic syncs kept reusing the live book."""
    broker = Broker()
    ledger = Ledger()
    original = ledger.commit_snapshot
    failing = [False]

    async def commit(snapshot: BrokerSnapshot, *args: Any) -> tuple[SyncPlan, int]:
        if failing[0]:
            raise OSError("database or disk is full")
        return await original(snapshot, *args)

    ledger.commit_snapshot = commit  # type: ignore[method-assign]
    options = SyncOptions(enabled=False, refresh_every=3600)
    service = PositionSyncService(broker, ledger, options)  # type: ignore[arg-type]

    async def scenario() -> None:
        await service.sync_positions(SyncTrigger.MANUAL)
        failing[0] = True
        await service.sync_positions(SyncTrigger.PERIODIC)  # reuses the live book, fails
        await service.sync_positions(SyncTrigger.PERIODIC)  # asks again, fails again
        failing[0] = False
        await service.sync_positions(SyncTrigger.PERIODIC)  # asks again, commits
        await service.sync_positions(SyncTrigger.PERIODIC)  # back to the live book

    run(scenario())
    assert [refresh for _, refresh in broker.asked] == [True, False, True, True, False]
