"""`LedgerStore`: the sync service's view of the ledger, on the database thread.

Loading the cached state, reconciling and writing happen inside ONE transaction, so nothing
another writer commits — a Mark closed in the window, a second instance — can slip between the
read and the write: on SQLite the transaction is BEGIN IMMEDIATE; on PostgreSQL it starts by
taking its accounts' advisory locks. On both, a snapshot older than one already committed by
another syncer is recorded as superseded instead of applied (app.db.concurrency).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.db import concurrency, repository
from app.db.database import Database
from app.db.errors import DatabaseConflictError, DatabaseIntegrityError
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.reconcile import reconcile
from app.domain.records import RunOutcome
from app.domain.values import BrokerSnapshot, SyncStatus, SyncTrigger

log = logging.getLogger(__name__)

COMMIT_RETRIES = 2
"""On PostgreSQL, a transaction another writer broke (a unique index, a deadlock) is run again."""

SUPERSEDED = "superseded: another sync committed a newer snapshot of these accounts meanwhile"


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
        """Reconcile the snapshot with the cache and commit plan + run row together.

        On PostgreSQL a unique-index violation or a deadlock (another writer got there first
        despite the locks) rolls back and the whole transaction runs again, re-reading the state
        the other writer committed; after COMMIT_RETRIES the error is raised.
        """
        attempt = 0
        while True:
            try:
                return await self.db.run(_commit, snapshot, options, trigger, started_at)
            except (DatabaseIntegrityError, DatabaseConflictError) as exc:
                attempt += 1
                if self.db.is_sqlite or attempt > COMMIT_RETRIES:
                    raise
                # The message may name account codes: log its kind only.
                log.warning(
                    "sync transaction collided with another writer (%s); retrying (%d of %d)",
                    type(exc).__name__,
                    attempt,
                    COMMIT_RETRIES,
                )

    async def record_run(self, outcome: RunOutcome) -> int:
        """Record a run that changed nothing."""
        return await self.db.run(repository.record_run, outcome)


def touched_accounts(snapshot: BrokerSnapshot) -> set[str]:
    """Every account a plan made from this snapshot may write (its locks)."""
    codes = set(snapshot.accounts)
    codes.update(account for account, _ in snapshot.scope or ())
    codes.update(f.account for f in snapshot.fills)
    return codes


def _commit(
    session: Session,
    snapshot: BrokerSnapshot,
    options: ReconcileOptions,
    trigger: SyncTrigger,
    started_at: datetime,
) -> tuple[SyncPlan, int]:
    codes = touched_accounts(snapshot)
    concurrency.lock_accounts(session, codes)  # PostgreSQL; SQLite's BEGIN IMMEDIATE did it
    newer = None
    if snapshot.complete:
        newer = concurrency.superseded(session, codes, started_at)
    if newer is not None:
        plan = SyncPlan(
            synced_at=snapshot.taken_at,
            accounts=snapshot.accounts,
            positions_seen=len(snapshot.positions),
            incomplete_reason=f"{SUPERSEDED} (at {newer.isoformat()})",
            superseded=True,
        )
        status = SyncStatus.SKIPPED
    else:
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
    run_id = repository.apply_plan(session, plan, outcome)
    if status is SyncStatus.OK:
        concurrency.stamp_snapshot(session, codes, snapshot.taken_at)
    return plan, run_id
