"""A run another syncer superseded takes a fresh snapshot (a shared PostgreSQL ledger, issue 9).

Fakes stand in for the broker and the ledger: the point is the service's reaction to a plan the
store marked `superseded` (app.db.concurrency decides that; tests/db/test_postgresql.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.domain.plan import SyncPlan
from app.domain.values import BrokerSnapshot, SyncStatus, SyncTrigger
from app.sync.service import SUPERSEDED_RETRIES, PositionSyncService, SyncOptions


class Broker:
    def __init__(self) -> None:
        self.snapshots = 0

    async def snapshot(self, scope: Any = None, *, refresh: bool = False) -> BrokerSnapshot:
        self.snapshots += 1
        return BrokerSnapshot(taken_at=datetime.now(UTC), accounts=frozenset({"DU1"}))


class Ledger:
    def __init__(self, superseded: int) -> None:
        self.superseded = superseded
        self.commits = 0

    async def commit_snapshot(self, snapshot: BrokerSnapshot, *args: Any) -> tuple[SyncPlan, int]:
        self.commits += 1
        if self.commits <= self.superseded:
            plan = SyncPlan(snapshot.taken_at, incomplete_reason="superseded: …", superseded=True)
        else:
            plan = SyncPlan(snapshot.taken_at, accounts=snapshot.accounts)
        return plan, self.commits

    async def record_run(self, outcome: Any) -> int:
        raise AssertionError("nothing to record: the store wrote the skipped run")


def test_superseded_run_takes_a_fresh_snapshot(run: Any) -> None:
    """Guards against a trigger lost because another syncer's older-started view won the lock."""
    broker, ledger = Broker(), Ledger(superseded=1)
    service = PositionSyncService(broker, ledger, SyncOptions(enabled=False))  # type: ignore[arg-type]
    published: list[Any] = []
    service.on_result(published.append)

    result = run(service.sync_positions(SyncTrigger.EXECUTION))

    assert result.ok and result.run_id == 2
    assert (broker.snapshots, ledger.commits) == (2, 2)
    assert published == [result]  # the superseded attempt is in the sync log, not published


def test_retries_are_bounded(run: Any) -> None:
    """Guards against a syncer spinning while another keeps committing first: it skips."""
    broker, ledger = Broker(), Ledger(superseded=100)
    service = PositionSyncService(broker, ledger, SyncOptions(enabled=False))  # type: ignore[arg-type]

    result = run(service.sync_positions(SyncTrigger.PERIODIC))

    assert result.status is SyncStatus.SKIPPED and result.error.startswith("superseded")
    assert ledger.commits == 1 + SUPERSEDED_RETRIES
