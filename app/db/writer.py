"""`LedgerWriter`: the ledger's write commands — the only way to write it from outside app.db.

Each command is one writing transaction (`Database.run`: on SQLite BEGIN IMMEDIATE, on
PostgreSQL the accounts' advisory locks first) that reads what it decides on inside that
transaction: a sync's snapshot (app.db.store), a run that changed nothing, the user's Mark
closed with its version check (app.db.manual), an IB statement's import (app.db.statements).
The sync service holds it as its `LedgerPort`. `BlockingLedgerWriter` is the command line's
(no event loop): the same commands' transactions, through `run_sync`.

Every command that can change lifecycles forgets the store's kept copy of the OPEN ones
(app.db.store.OpenPositions): the copy would be found stale anyway (the write moved
`total_changes`), but that should not hang on which connection wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from app.db.database import Database
from app.db.store import LedgerStore
from app.domain.manual import MarkClosedRequest
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.records import RunOutcome
from app.domain.values import BrokerSnapshot, Lifecycle, SyncTrigger

if TYPE_CHECKING:  # app.db.statements loads on the first import: not on every start
    from app.domain.statements import ImportSummary, Statement

__all__ = ["BlockingLedgerWriter", "LedgerWriter"]


class LedgerWriter:
    """The ledger's write commands for code on an event loop; implements app.sync's LedgerPort."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    async def commit_snapshot(
        self,
        snapshot: BrokerSnapshot,
        options: ReconcileOptions,
        trigger: SyncTrigger,
        started_at: datetime,
    ) -> tuple[SyncPlan, int]:
        """Reconcile a complete snapshot with the ledger and commit the plan and its run row in
        one transaction (a snapshot older than one committed meanwhile is recorded superseded);
        the plan and the run's id."""
        return await self._store.commit_snapshot(snapshot, options, trigger, started_at)

    async def record_run(self, outcome: RunOutcome) -> int:
        """Record a run that changed nothing (failed or skipped); its id."""
        return await self._store.record_run(outcome)

    async def mark_closed(self, request: MarkClosedRequest) -> Lifecycle:
        """The user's Mark closed, written only if the lifecycle is still `request.seen`; the
        closed lifecycle. Raises app.domain.manual.LifecycleChangedError (nothing written) when
        it changed since, MarkClosedError for a close that cannot be."""
        return await self._store.mark_closed(request)

    async def import_statement(
        self, statement: Statement, options: ReconcileOptions | None = None
    ) -> ImportSummary:
        """Merge an IB statement's facts into the ledger and fold every key they touch again,
        all or nothing; what it did (a re-import writes nothing)."""
        from app.db.statements import import_statement

        try:
            return await self._store.db.run(import_statement, statement, options)
        finally:
            self._store.kept.forget()


class BlockingLedgerWriter:
    """`LedgerWriter`'s commands the command line needs, blocking (`Database.run_sync`).

    A command-line process keeps no copy of the OPEN lifecycles (it syncs through LedgerWriter
    on a loop, if at all), so there is none to forget here.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def import_statement(
        self, statement: Statement, options: ReconcileOptions | None = None
    ) -> ImportSummary:
        """See LedgerWriter.import_statement."""
        from app.db.statements import import_statement

        return self._db.run_sync(import_statement, statement, options)
