"""`LedgerStore`: the sync service's view of the ledger, on the database thread.

Loading the cached state, reconciling and writing happen inside ONE transaction, so nothing
another writer commits — a Mark closed in the window, a second instance — can slip between the
read and the write: on SQLite the transaction is BEGIN IMMEDIATE; on PostgreSQL it starts by
taking its accounts' advisory locks. On both, a snapshot older than one already committed by
another syncer is recorded as superseded instead of applied (app.db.concurrency).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.db import account_values, concurrency, manual, rates
from app.db.adopt import adopt_seed_rows
from app.db.database import Database
from app.db.errors import DatabaseConflictError, DatabaseIntegrityError
from app.db.repository import queries, round_trip, writes
from app.domain.manual import MarkClosedRequest
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.records import RunOutcome
from app.domain.values import (
    BrokerSnapshot,
    LedgerState,
    Lifecycle,
    PositionKey,
    PositionStatus,
    SyncStatus,
    SyncTrigger,
)

log = logging.getLogger(__name__)

COMMIT_RETRIES = 2
"""On PostgreSQL, a transaction another writer broke (a unique index, a deadlock) is run again."""

SUPERSEDED = "superseded: another sync committed a newer snapshot of these accounts meanwhile"


class LedgerStore:
    """A sync's transactions and Mark closed over a Database, behind app.db.writer.LedgerWriter
    (both implement app.sync.ports.LedgerPort); keeps the OPEN lifecycles the readers share."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._open = OpenPositions()

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
            after: list[_Kept] = []
            try:
                result = await self.db.run(
                    _commit, snapshot, options, trigger, started_at, self._open, after
                )
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
            else:
                if after:
                    self._open.keep(after[0])  # committed: what it left is now the ledger
                return result

    async def mark_closed(self, request: MarkClosedRequest) -> Lifecycle:
        """The user's Mark closed, written only if the lifecycle is still the version they saw
        (app.db.manual); the closed lifecycle. Raises LifecycleChangedError otherwise."""
        try:
            return await self.db.run(manual.mark_closed, request)
        finally:
            # The write moved total_changes, so the kept copy would be found stale anyway; forget
            # it outright so that does not hang on which connection wrote.
            self._open.forget()

    async def record_run(self, outcome: RunOutcome) -> int:
        """Record a run that changed nothing."""
        return await self.db.run(writes.record_run, outcome)

    @property
    def kept(self) -> OpenPositions:
        """The kept copy of the OPEN lifecycles, which readers share (app.db.reader)."""
        return self._open


def kept_positions(
    session: Session, cache: OpenPositions | None, include_closed: bool
) -> list[Lifecycle]:
    """What `queries.positions` reads, with the OPEN lifecycles of the kept copy when it
    provably still is the ledger. The window reloads after every sync: reading 20,000 rows
    back cost the database thread ~200 ms of Python, and a second copy of every lifecycle
    in memory (~50 MB); the copy's own objects are shared instead.

    When nothing current is kept (at start-up, after a first sync of thousands of positions),
    what this read gives becomes the kept copy (`OpenPositions.adopt`): the next sync then
    shares the window's lifecycles instead of reading a second copy of every one while the
    window still holds the first (~50 MB at once at 20,000 positions, the window's peak).

    Runs in a reader's snapshot (app.db.reader): `_token` reads `PRAGMA data_version` first,
    which starts the snapshot, so the kept rows and the rest read below are one state.
    """
    if cache is None:
        return queries.positions(session, include_closed=include_closed)
    token = _token(session)
    kept = cache.current(session, token)
    if kept is None:
        rows = queries.positions(session, include_closed=include_closed)
        if token is not None:
            cache.adopt(
                token, queries.account_codes(session), rows, queries.unkeyed_open_ids(session)
            )
        return rows
    if kept.synced:  # made exact once, and kept so (the window then shares these objects)
        kept = _Kept(kept.token, kept.accounts, kept.exact())
        cache.keep(kept)
    others = queries.positions_besides(session, kept.accounts, include_closed=include_closed)
    rows = [*kept.positions.values(), *others]
    rows.sort(key=queries.position_order)
    return rows


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
    cache: OpenPositions | None = None,
    after: list[_Kept] | None = None,
) -> tuple[SyncPlan, int]:
    """One sync's transaction. With `cache`, the cached state is used when still valid, and
    what this transaction leaves is appended to `after` (to keep once it has committed)."""
    codes = touched_accounts(snapshot)
    concurrency.lock_accounts(session, codes)  # PostgreSQL; SQLite's BEGIN IMMEDIATE did it
    adopt_seed_rows(session, snapshot)  # seed rows (no conId) become their key's lifecycle
    newer = None
    state: LedgerState | None = None
    loaded = False
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
        state = cache.state(session, snapshot) if cache is not None else None
        loaded = state is None
        if state is None:
            state = queries.load_state(session, snapshot)
        # Imported here, not at the top: the reconciliation and its fold are not needed to paint
        # the cached ledger (issue 19); the window preloads them after that paint
        # (app.runtime.preload_broker_dependencies), so a first sync does not wait for them.
        from app.domain.reconcile import reconcile

        plan = reconcile(
            state, snapshot, options, lambda keys: queries.load_histories(session, keys)
        )
        if not loaded and cache is not None:
            plan = cache.exact_plan(session, plan)
        status = SyncStatus.OK if plan.incomplete_reason is None else SyncStatus.FAILED
    outcome = RunOutcome(
        trigger=trigger,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status=status,
        error=plan.incomplete_reason,
        positions_seen=plan.positions_seen,
        stale_prices=snapshot.stale_prices if status is SyncStatus.OK else (),
        fills_unavailable=snapshot.fills_unavailable if status is SyncStatus.OK else None,
    )
    opened: list[int] = []
    run_id = writes.apply_plan(session, plan, outcome, opened)
    if status is SyncStatus.OK:
        concurrency.stamp_snapshot(session, codes, snapshot.taken_at)
        rates.store_rates(session, snapshot.exchange_rates)  # best-effort facts of an OK run
        account_values.store_account_values(session, snapshot.account_values)  # the same
        if cache is not None and after is not None and state is not None:
            kept = cache.after(session, snapshot, state, loaded, plan, opened)
            if kept is not None:
                after.append(kept)
    return plan, run_id


# ---------------------------------------------------------------------------- the open state
CACHE_CHANGES = 2_000
"""Above this many lifecycle changes in one sync (a first sync), the next sync reads the ledger
again instead of this one converting every changed row for the cache."""


@dataclass(frozen=True, slots=True)
class _Token:
    """Identifies the database contents this connection last saw (SQLite).

    `data_version` moves when another connection commits; `total_changes` counts every row this
    connection inserted, updated or deleted (even in transactions later rolled back). Equal tokens
    on the same connection object therefore mean nobody wrote in between.
    """

    connection: object
    data_version: int
    total_changes: int

    def same(self, other: _Token) -> bool:
        return (
            self.connection is other.connection
            and self.data_version == other.data_version
            and self.total_changes == other.total_changes
        )


@dataclass(frozen=True, slots=True)
class _Kept:
    """Every OPEN lifecycle (with a conId) of `accounts`, as stored when the token was read —
    but for `last_synced_at`, which for the ids in `synced` is stored as the value there.

    A sync moves `last_synced_at` of every position it saw; rebuilding 20,000 lifecycles for
    that cost 48 ms of a sync where nothing else changed. Reconcile never reads the field (it
    only carries it into a lifecycle it closes or marks missing: `exact_plan` puts the stored
    value there), and whoever hands the lifecycles out of the store uses `exact()`.
    """

    token: _Token
    accounts: frozenset[str]
    positions: dict[PositionKey, Lifecycle]
    synced: dict[int, datetime] = field(default_factory=dict)

    def exact(self) -> dict[PositionKey, Lifecycle]:
        """`positions` exactly as reading them gives (last_synced_at applied)."""
        if not self.synced:
            return self.positions
        synced = self.synced
        return {
            key: life
            if life.id not in synced
            else round_trip.with_last_synced(life, synced[life.id])
            for key, life in self.positions.items()
        }


class OpenPositions:
    """The ledger's OPEN lifecycles as the last sync left them, kept between syncs (SQLite).

    Reading 20,000 rows back every sync costs more than the rest of a sync that changes
    nothing. The copy is used only while the database provably holds exactly it: same
    connection, no commit by any other connection (`PRAGMA data_version`), no row changed by
    this one since (`total_changes`: a Mark closed, a failed run's row, a rolled-back write).
    Anything else — including any doubt — reads the ledger again. A copy is kept only after its
    transaction committed, and holds the rows exactly as reading them would give them
    (round_trip.as_stored). PostgreSQL (shared by several writers) always reads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: _Kept | None = None

    def keep(self, kept: _Kept) -> None:
        """`kept`'s transaction committed."""
        with self._lock:
            self._kept = kept

    def forget(self) -> None:
        with self._lock:
            self._kept = None

    def current(self, session: Session, token: _Token | None = None) -> _Kept | None:
        """The kept copy, when it still is the ledger (nobody wrote since); else None.
        `token`: the session's, when the caller has read it already."""
        with self._lock:
            kept = self._kept
        if kept is None:
            return None
        if token is None:
            token = _token(session)
        return kept if token is not None and kept.token.same(token) else None

    def adopt(
        self,
        token: _Token,
        accounts: Iterable[str],
        lifecycles: Iterable[Lifecycle],
        unkeyed: Collection[int],
    ) -> None:
        """A reader read every lifecycle (`queries.positions`) at `token`: its OPEN ones with a
        conId are what `load_state` reads for any of `accounts` (every account of the ledger),
        so they are kept as the copy of the ledger at `token` (the same objects: nothing is
        converted). `unkeyed`: ids of the OPEN rows without a conId (load_state skips them;
        `lifecycle_from` reads their NULL as 0). Used only while `current` finds the ledger
        unchanged since, like any kept copy."""
        positions = {
            life.key: life
            for life in lifecycles
            if life.status is PositionStatus.OPEN and life.id not in unkeyed
        }
        with self._lock:
            self._kept = _Kept(token, frozenset(accounts), positions)

    def state(self, session: Session, snapshot: BrokerSnapshot) -> LedgerState | None:
        """The state load_state would read, when the kept copy still is the ledger; else None."""
        kept = self.current(session)
        if kept is None:
            return None
        if snapshot.scope is not None:
            if not {account for account, _ in snapshot.scope} <= kept.accounts:
                return None
            positions = {k: kept.positions[k] for k in snapshot.scope if k in kept.positions}
        elif snapshot.accounts == kept.accounts:
            positions = kept.positions
        elif snapshot.accounts <= kept.accounts:
            positions = {k: v for k, v in kept.positions.items() if k[0] in snapshot.accounts}
        else:
            return None
        return LedgerState(positions, queries.known_fills(session, snapshot))

    def after(
        self,
        session: Session,
        snapshot: BrokerSnapshot,
        state: LedgerState,
        loaded: bool,
        plan: SyncPlan,
        opened: list[int],
    ) -> _Kept | None:
        """What the ledger holds once `plan` (made from `state`) is written; None to read it
        again next time. Call it last in the transaction, after every write."""
        token = _token(session)
        if token is None or len(plan.changes) > CACHE_CHANGES or plan.deleted_position_ids:
            return None
        with self._lock:
            kept = self._kept
        if not loaded and kept is not None:
            accounts = kept.accounts
            positions = dict(kept.positions)
            stale = dict(kept.synced)
        elif loaded and snapshot.scope is None:
            accounts = snapshot.accounts  # state holds every OPEN row of these accounts
            positions = dict(state.open_positions)
            stale = {}
        else:
            return None  # a scoped read: not every row of the accounts is known
        by_id = {life.id: life for life in state.open_positions.values()}
        synced = plan.synced_at
        # Every position seen: last_synced_at moved (applied lazily, see _Kept); those whose
        # market data moved are rebuilt anyway, with it.
        stale.update(dict.fromkeys(plan.seen_position_ids, synced))
        for update in plan.market_updates:
            life = by_id[update.position_id]
            positions[life.key] = round_trip.with_market(
                life,
                update.average_price,
                update.average_cost,
                update.current_price,
                update.market_value,
                update.unrealized_pnl,
                update.unrealized_pnl_pct,
                synced,
            )
            del stale[update.position_id]
        # The order the repository wrote them: updates of existing rows, then the new rows.
        new_ids = iter(opened)
        for change in plan.changes:
            if change.before is not None:
                positions.pop(change.before.key, None)
                stale.pop(change.before.id or 0, None)
        for change in plan.changes:
            row_id = change.before.id if change.before is not None else next(new_ids)
            life = change.after
            if life.is_open and life.account in accounts and row_id is not None:
                positions[life.key] = round_trip.as_stored(life, row_id)
        return _Kept(token, accounts, positions, stale)

    def exact_plan(self, session: Session, plan: SyncPlan) -> SyncPlan:
        """`plan` (made from `state()`) with the stored last_synced_at wherever reconcile carried
        a kept lifecycle's own (lazily outdated) one into a lifecycle it writes."""
        kept = self.current(session)
        if kept is None or not kept.synced:
            return plan
        synced = kept.synced
        changes = []
        for change in plan.changes:
            before, after = change.before, change.after
            if (
                before is not None
                and before.id in synced
                and after.last_synced_at is before.last_synced_at
            ):
                exact = replace(after, last_synced_at=synced[before.id])
                changes.append(replace(change, after=exact))
            else:
                changes.append(change)
        return replace(plan, changes=tuple(changes))


def _token(session: Session) -> _Token | None:
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return None
    raw: Any = connection.connection.dbapi_connection
    if not isinstance(raw, sqlite3.Connection):
        return None
    version = connection.exec_driver_sql("PRAGMA data_version").scalar_one()
    return _Token(raw, int(version), raw.total_changes)
