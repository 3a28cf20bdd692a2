"""Writes: a sync plan with its `sync_runs` row, a re-fold, a Mark closed, fills, observations.

Every function takes the Session that `Database.run` / `run_sync` opens inside one transaction
(so a plan, its events, its fills and its `sync_runs` row commit together — DESIGN rule 7).
Apart from the queries because this is where the write-path tricks live — statements
compiled once, SQLite's executemany fed straight to the driver, position ids numbered by hand —
and none of them may leak into a read. The rows themselves are built by `rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Insert, Update, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from app.db import concurrency
from app.db.repository.rows import (
    COPIED_EVENT_COLUMNS,
    COPIED_OBSERVATION_COLUMNS,
    FILL_NAMES,
    MARKET_NAMES,
    OB,
    OBSERVATION_NAMES,
    POSITION_NAMES,
    A,
    E,
    P,
    R,
    X,
    chunks,
    copied_opening,
    event_rows,
    fill_rows,
    fill_values,
    market_rows,
    observation_copies,
    observation_rows,
    position_values,
    run_values,
)
from app.domain.history import Observation
from app.domain.plan import LifecycleChange, MarketUpdate, SyncPlan
from app.domain.records import RunOutcome
from app.domain.values import Fill, Lifecycle, PositionKey, PositionStatus, SyncStatus


def account_ids(session: Session, codes: Iterable[str], *, create: bool) -> dict[str, int]:
    """Ids of the accounts with these IB codes; missing ones are inserted when `create`."""
    wanted = sorted(set(codes))
    found: dict[str, int] = {}
    for chunk in chunks(wanted):
        found.update(session.execute(select(A.c.code, A.c.id).where(A.c.code.in_(chunk))).all())
    missing = [code for code in wanted if code not in found]
    if missing and create:
        session.execute(insert(A), [{"code": code} for code in missing])
        for chunk in chunks(missing):
            found.update(session.execute(select(A.c.code, A.c.id).where(A.c.code.in_(chunk))).all())
    return found


def apply_plan(
    session: Session, plan: SyncPlan, outcome: RunOutcome, opened: list[int] | None = None
) -> int:
    """Write a plan and its `sync_runs` row in the caller's transaction; returns the run id.

    A plan made from an incomplete snapshot writes only the (failed) run row. `opened` receives
    the ids of the lifecycles the plan creates, in the order of its changes.
    """
    run_id = session.execute(insert(R).returning(R.c.id), run_values(plan, outcome)).scalar_one()
    if outcome.status is not SyncStatus.OK or plan.incomplete_reason is not None:
        return int(run_id)

    codes = set(plan.accounts)
    codes.update(c.after.account for c in plan.changes)
    codes.update(f.account for f in plan.new_fills)
    codes.update(c.fill.account for c in plan.corrections)
    ids = account_ids(session, codes, create=True)

    _delete_lifecycles(session, plan.deleted_position_ids)
    new_ids = _write_changes(session, plan.changes, ids, run_id)
    new_rows = zip(new_ids, (c.after for c in plan.changes if c.before is None), strict=True)
    opened_rows = {life.key: (row_id, life) for row_id, life in new_rows}
    _insert_observations(session, plan.new_observations, ids, run_id, opened_rows)
    if opened is not None:
        opened.extend(new_ids)
    _executemany(
        session,
        _UPDATE_BY_ID,
        MARKET_NAMES,
        market_rows(sorted(plan.market_updates, key=_by_position)),
    )
    # In id order: the rows are then visited in the table's own order (fewer pages touched).
    for chunk in chunks(sorted(plan.seen_position_ids)):
        session.execute(_SEEN, {"ids": chunk, "synced_at": plan.synced_at})
    for correction in plan.corrections:
        session.execute(delete(X).where(X.c.exec_id == correction.replaced_exec_id))
    fills = [*plan.new_fills, *(c.fill for c in plan.corrections)]
    if fills:
        session.execute(insert(X), [fill_values(f, ids[f.account]) for f in fills])
    return int(run_id)


def _by_position(update: MarketUpdate) -> int:
    return update.position_id


def record_run(session: Session, outcome: RunOutcome) -> int:
    """Record a run that changed nothing (failed or skipped); returns its id."""
    plan = SyncPlan(synced_at=outcome.finished_at, incomplete_reason=outcome.error)
    return apply_plan(session, plan, outcome)


def apply_refold(
    session: Session, changes: Sequence[LifecycleChange], deleted: Sequence[int]
) -> None:
    """Write what folding keys again outside a sync planned (no sync run)."""
    ids = account_ids(session, {c.after.account for c in changes}, create=False)
    _delete_lifecycles(session, deleted)
    _write_changes(session, changes, ids, run_id=None)


def apply_manual_change(session: Session, change: LifecycleChange) -> None:
    """Write a user's Mark closed (no sync run); the row must still be as the user saw it."""
    assert change.before is not None and change.before.id is not None
    concurrency.lock_accounts(session, [change.after.account])  # a sync may be closing it too
    status = session.execute(select(P.c.status).where(P.c.id == change.before.id)).scalar_one()
    if status != PositionStatus.OPEN.value:
        raise ValueError("the position was closed meanwhile; reload and try again")
    ids = account_ids(session, [change.after.account], create=False)
    _write_changes(session, [change], ids, run_id=None)


def record_observation(session: Session, observation: Observation) -> None:
    """Store one observation outside a sync (the user's Mark closed, a statement's confirmation)."""
    ids = account_ids(session, [observation.account], create=False)
    _insert_observations(session, [observation], ids, None)


def insert_fills(session: Session, fills: Sequence[Fill], ids: dict[str, int]) -> None:
    """Insert `executions` rows (a statement's tens of thousands: the executemany fast path)."""
    _executemany(session, insert(X), FILL_NAMES, fill_rows(fills, ids))


def _executemany(
    session: Session,
    statement: Insert | Update,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Run `statement` once per row; each row holds the values of `names`, in that order."""
    if rows:
        _executemany_columns(session, statement, names, list(zip(*rows, strict=True)))


def _executemany_columns(
    session: Session,
    statement: Insert | Update,
    names: Sequence[str],
    columns: list[Sequence[Any]],
) -> None:
    """`_executemany` given its rows' columns (one sequence per name, all of one length).

    On SQLite the values go through the columns' own bind processors here and the rows straight
    to the driver's executemany: SQLAlchemy's per-row parameter handling costs more than
    SQLite's own work for the 20,000 rows of a large sync. Elsewhere, a Core executemany.
    """
    if not columns or not columns[0]:
        return
    dialect = session.get_bind().dialect
    if dialect.paramstyle != "qmark":
        rows = zip(*columns, strict=True)
        session.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    assert compiled.positiontup is not None
    where = {name: i for i, name in enumerate(names)}
    # Column by column: each processor runs over its column in one comprehension, and the
    # columns become the driver's rows in C (zip); a loop over the slots of each row cost
    # ~90 ms of a 20,000-position first sync (its ~200,000 bound decimals).
    ordered = [columns[where[name]] for name in compiled.positiontup]
    for slot, name in enumerate(compiled.positiontup):
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            # Every processor of ours maps None to None.
            ordered[slot] = [None if v is None else processor(v) for v in ordered[slot]]
    session.connection().exec_driver_sql(compiled.string, list(zip(*ordered, strict=True)))


def _insert_positions(session: Session, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert position rows (POSITION_NAMES order); returns their ids in the order of `rows`."""
    if session.get_bind().dialect.name != "sqlite":
        statement = insert(P).returning(P.c.id, sort_by_parameter_order=True)
        return list(
            session.scalars(statement, [dict(zip(POSITION_NAMES, r, strict=True)) for r in rows])
        )
    # SQLite cannot return ids of a batched insert in order, so SQLAlchemy would send one
    # statement per row (20,000 of them in a first sync). The transaction already holds the
    # write lock (BEGIN IMMEDIATE), so number the rows as SQLite itself would — max(id) + 1 on —
    # and insert them in one executemany.
    first = session.execute(select(func.coalesce(func.max(P.c.id), 0))).scalar_one() + 1
    ids = list(range(first, first + len(rows)))
    # The ids as one more column: no second tuple per row.
    columns = [ids, *zip(*rows, strict=True)]
    _executemany_columns(session, insert(P), ("id", *POSITION_NAMES), columns)
    return ids


_UPDATE_BY_ID = update(P).where(P.c.id == bindparam("row_id", type_=P.c.id.type))
"""An executemany target: `row_id` picks the row, the other names are set."""

_SEEN = (
    update(P)
    .where(P.c.id.in_(bindparam("ids", expanding=True)))
    .values(last_synced_at=bindparam("synced_at", type_=P.c.last_synced_at.type))
)
"""Every position a sync saw: one statement, compiled once (a literal IN list was compiled
again for each chunk: 80,000 coercions of ids per 20,000-position sync)."""


def _write_changes(
    session: Session,
    changes: Sequence[LifecycleChange],
    account_ids_by_code: dict[str, int],
    run_id: int | None,
) -> list[int]:
    """Update, then insert, the changed lifecycles and their events; the new rows' ids."""
    # Closing rows first: a flip closes one OPEN row and opens another for the same key, and the
    # one-OPEN-row unique index must never see both open at once (a fold may also turn a stored
    # OPEN row into a closed one and a later row of the key into the open one).
    existing = [c for c in changes if c.before is not None]
    if any(c.replaces_events or (c.before and not c.before.is_open) for c in existing):
        existing.sort(key=lambda c: c.after.is_open)
    replaced = [c.before.id for c in existing if c.replaces_events and c.before is not None]
    for chunk in chunks(replaced):
        session.execute(delete(E).where(E.c.position_id.in_(chunk)))
    _executemany(
        session,
        _UPDATE_BY_ID,
        ("row_id", *POSITION_NAMES),
        [
            (c.before.id, *position_values(c.after, account_ids_by_code[c.after.account]))
            for c in existing
            if c.before is not None
        ],
    )
    new = [c for c in changes if c.before is None]
    new_ids: list[int] = []
    if new:
        rows = [position_values(c.after, account_ids_by_code[c.after.account]) for c in new]
        new_ids = _insert_positions(session, rows)
    position_ids = [c.before.id for c in existing if c.before is not None] + new_ids
    _insert_events(session, position_ids, [*existing, *new], run_id)
    return new_ids


COPY_RUN = 32
"""The fewest rows one INSERT … SELECT copies from `positions` (rows.COPIED_EVENT_COLUMNS);
shorter runs are bound as rows: a statement per few rows costs more than binding them."""


def _runs(copies: Sequence[tuple[int, Any] | None]) -> list[tuple[int, int, Any]]:
    """`copies` (per item: the position row it copies and the statement's constants, or None)
    cut into ordered segments (start, end, constants): runs of at least COPY_RUN items copying
    consecutive position ids with equal constants, and items written as rows (constants None).
    Written in this order, every row gets the id it would get written item by item."""
    segments: list[tuple[int, int, Any]] = []
    rows_from = i = 0
    count = len(copies)
    while i < count:
        copy = copies[i]
        if copy is None:
            i += 1
            continue
        j = i + 1
        last = copy[0]
        while j < count and (nxt := copies[j]) is not None and nxt[0] == last + 1:
            if nxt[1] != copy[1]:
                break
            last = nxt[0]
            j += 1
        if j - i >= COPY_RUN:
            if rows_from < i:
                segments.append((rows_from, i, None))
            segments.append((i, j, copy[1]))
            rows_from = j
        i = j
    if rows_from < count:
        segments.append((rows_from, count, None))
    return segments


def _copies_rows(session: Session, count: int) -> bool:
    """Whether to look for runs to copy: SQLite (whose new position ids this module numbers
    itself, consecutively) and enough rows for one run."""
    return count >= COPY_RUN and session.get_bind().dialect.name == "sqlite"


def _insert_events(
    session: Session,
    position_ids: Sequence[int | None],
    changes: Sequence[LifecycleChange],
    run_id: int | None,
) -> None:
    """Insert the events of `changes` (lifecycle rows `position_ids`), in that order."""
    segments: list[tuple[int, int, Any]] = [(0, len(changes), None)]
    if _copies_rows(session, len(changes)):
        copies = [
            (pid, constants)
            if pid is not None and (constants := copied_opening(change)) is not None
            else None
            for pid, change in zip(position_ids, changes, strict=True)
        ]
        segments = _runs(copies)
    for start, end, constants in segments:
        if constants is None:
            names, events = event_rows(position_ids[start:end], changes[start:end], run_id)
            _executemany(session, insert(E), names, events)
            continue
        kind, quantity_before, note = constants
        first, last = position_ids[start], position_ids[end - 1]
        source = [
            *(column for _, column in COPIED_EVENT_COLUMNS),
            literal(run_id, E.c.sync_run_id.type),
            literal(kind, E.c.kind.type),
            literal(quantity_before, E.c.quantity_before.type),
            literal(note, E.c.note.type),
        ]
        target = [
            *(name for name, _ in COPIED_EVENT_COLUMNS),
            "sync_run_id",
            "kind",
            "quantity_before",
            "note",
        ]
        rows = select(*source).where(P.c.id.between(first, last)).order_by(P.c.id)
        session.execute(insert(E).from_select(target, rows))


def _delete_lifecycles(session: Session, position_ids: Sequence[int]) -> None:
    """Lifecycles a fold no longer derives, with their events."""
    for chunk in chunks(list(position_ids)):
        session.execute(delete(E).where(E.c.position_id.in_(chunk)))
        session.execute(delete(P).where(P.c.id.in_(chunk)))


def _insert_observations(
    session: Session,
    observations: Sequence[Observation],
    account_ids_by_code: dict[str, int],
    run_id: int | None,
    opened: dict[PositionKey, tuple[int, Lifecycle]] | None = None,
) -> None:
    """Insert `observations` in order; those repeating a lifecycle row this plan `opened`
    (key → row id and lifecycle) may be copied from it (rows.COPIED_OBSERVATION_COLUMNS)."""
    segments: list[tuple[int, int, Any]] = [(0, len(observations), None)]
    copies: list[tuple[int, Any] | None] = []
    if opened and _copies_rows(session, len(observations)):
        for o in observations:
            row = opened.get((o.account, o.con_id))
            copied = row is not None and observation_copies(o, row[1])
            copies.append((row[0], o.kind._value_) if copied and row is not None else None)
        segments = _runs(copies)
    for start, end, kind in segments:
        if kind is None:
            rows = observation_rows(observations[start:end], account_ids_by_code, run_id)
            _executemany(session, insert(OB), OBSERVATION_NAMES, rows)
            continue
        first, last = copies[start], copies[end - 1]
        assert first is not None and last is not None
        source = [
            *(column for _, column in COPIED_OBSERVATION_COLUMNS),
            literal(kind, OB.c.kind.type),
            literal(run_id, OB.c.sync_run_id.type),
        ]
        target = [*(name for name, _ in COPIED_OBSERVATION_COLUMNS), "kind", "sync_run_id"]
        selected = select(*source).where(P.c.id.between(first[0], last[0])).order_by(P.c.id)
        session.execute(insert(OB).from_select(target, selected))
