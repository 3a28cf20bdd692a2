"""`LedgerStore`: the sync service's view of the ledger, on the database thread.

Loading the cached state, reconciling and writing happen inside ONE transaction (BEGIN
IMMEDIATE), so nothing another writer commits — a Mark closed in the window, a second
instance — can slip between the read and the write.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.db import repository
from app.db.database import Database
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.reconcile import reconcile
from app.domain.records import RunOutcome
from app.domain.values import BrokerSnapshot, SyncStatus, SyncTrigger


class LedgerStore:
    """Implements app.sync.ports.LedgerPort over a Database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def commit_snapshot(
        self,
        snapshot: BrokerSnapshot,
        options: ReconcileOptions,
        trigger: SyncTrigger,
        started_at: datetime,
    ) -> tuple[SyncPlan, int]:
        """Reconcile the snapshot with the cache and commit plan + run row together."""
        return await self.db.run(_commit, snapshot, options, trigger, started_at)

    async def record_run(self, outcome: RunOutcome) -> int:
        """Record a run that changed nothing."""
        return await self.db.run(repository.record_run, outcome)


def _commit(
    session: Session,
    snapshot: BrokerSnapshot,
    options: ReconcileOptions,
    trigger: SyncTrigger,
    started_at: datetime,
) -> tuple[SyncPlan, int]:
    state = repository.load_state(session, snapshot)
    plan = reconcile(state, snapshot, options)
    status = SyncStatus.OK if plan.incomplete_reason is None else SyncStatus.FAILED
    outcome = RunOutcome(
        trigger=trigger,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status=status,
        error=plan.incomplete_reason,
        positions_seen=plan.positions_seen,
    )
    return plan, repository.apply_plan(session, plan, outcome)
