"""Queries: what a sync reads before it reconciles, and what every reader of the ledger asks.

Every function takes the Session that `Database.run` / `run_sync` opens and only reads.
Apart from the writes because a reader needs none of the write path's machinery, and the
selects here are what the (account_id, con_id) indexes are shaped for: lookups go per account,
in `rows.chunks` of conIds. The columns and their conversions come from `rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import or_ as sa_or
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Session

from app.db import account_values, rates
from app.db.repository.rows import (
    EVENT_COLUMNS,
    FILL_COLUMNS,
    OB,
    OBSERVATION_COLUMNS,
    POSITION_COLUMNS,
    TOTAL_COLUMNS,
    A,
    E,
    P,
    R,
    X,
    chunks,
    event_from,
    fill_from,
    gaps,
    lifecycle_from,
    observation_from,
    realized_amounts_from,
    realized_columns,
    sync_run_from,
    total_parts,
)
from app.domain.executions import base_exec_id, correction_rank
from app.domain.history import Observation, StoredHistory
from app.domain.money import ByCurrency, totals_from_parts
from app.domain.realized import lifecycle_totals
from app.domain.records import LedgerStatus, StalePrices, StoredEvent, SyncRun, SyncStats
from app.domain.series import RealizedAmount
from app.domain.values import (
    BrokerSnapshot,
    CostBasis,
    Fill,
    LedgerState,
    Lifecycle,
    PnlBasis,
    PositionKey,
    PositionStatus,
    SyncStatus,
    SyncTrigger,
)

_FILL_LOOKBACK = timedelta(days=1)  # IB reports only today's executions


def _by_account(keys: Iterable[PositionKey]) -> dict[str, list[int]]:
    """conIds by account, sorted: lookups through the (account_id, con_id) indexes."""
    grouped: dict[str, list[int]] = {}
    for account, con_id in sorted(set(keys)):
        grouped.setdefault(account, []).append(con_id)
    return grouped


# ---------------------------------------------------------------------------- a sync's reads
def load_state(session: Session, snapshot: BrokerSnapshot) -> LedgerState:
    """The cached OPEN lifecycles of the snapshot's accounts (or scope) and the fills it replays."""
    query = (
        select(*POSITION_COLUMNS)
        .join(A, A.c.id == P.c.account_id)
        .where(P.c.status == PositionStatus.OPEN.value, P.c.con_id.is_not(None))
    )
    if snapshot.scope is not None:
        # Per account, so the lookup goes through the (account_id, con_id) index and costs the
        # same however many positions are cached (a bare con_id IN scans every OPEN row).
        rows: list[Sequence[Any]] = []
        for account, con_ids in _by_account(snapshot.scope).items():
            for chunk in chunks(con_ids):
                where = (A.c.code == account, P.c.con_id.in_(chunk))
                rows.extend(session.execute(query.where(*where)).all())
    else:
        rows = list(session.execute(query.where(A.c.code.in_(sorted(snapshot.accounts)))).all())
    positions = {}
    for row in rows:
        life = lifecycle_from(row)
        if snapshot.scope is None or life.key in snapshot.scope:
            positions[life.key] = life
    return LedgerState(open_positions=positions, known_fills=known_fills(session, snapshot))


def known_fills(session: Session, snapshot: BrokerSnapshot) -> dict[str, Fill]:
    """Stored fills that share a base execId with the snapshot's (the latest version of each).

    The day's stored execIds are read alone (one narrow column) and only the rows that share a
    base are read whole: a late commission report for one fill of a key traded 1,000 times a
    day would otherwise convert every one of that day's fills to find the one it completes.
    """
    if not snapshot.fills:
        return {}
    bases = {base_exec_id(f.exec_id) for f in snapshot.fills}
    since = min(f.time for f in snapshot.fills) - _FILL_LOOKBACK
    day = (
        select(X.c.exec_id)
        .join(A, A.c.id == X.c.account_id)
        .where(X.c.time >= since, A.c.code.in_(sorted({f.account for f in snapshot.fills})))
    )
    wanted = {exec_id for exec_id in session.scalars(day) if base_exec_id(exec_id) in bases}
    # A stored fill older than the look-back still blocks its replay: its own id is read too.
    wanted.update(f.exec_id for f in snapshot.fills)
    known: dict[str, Fill] = {}
    stmt = select(*FILL_COLUMNS).join(A, A.c.id == X.c.account_id)
    for chunk in chunks(sorted(wanted)):
        for row in session.execute(stmt.where(X.c.exec_id.in_(chunk))):
            fill = fill_from(row)
            base = base_exec_id(fill.exec_id)
            held = known.get(base)
            if held is None or correction_rank(fill.exec_id) > correction_rank(held.exec_id):
                known[base] = fill
    return known


def load_histories(
    session: Session, keys: Sequence[PositionKey]
) -> dict[PositionKey, StoredHistory]:
    """Every stored fact of these keys, and their lifecycles with their events (a re-fold)."""
    lifecycles: dict[PositionKey, list[Lifecycle]] = {}
    for life in lifecycles_for(session, keys):
        lifecycles.setdefault(life.key, []).append(life)
    fills: dict[PositionKey, dict[str, Fill]] = {}
    observations: dict[PositionKey, list[Observation]] = {}
    fill_query = select(*FILL_COLUMNS).join(A, A.c.id == X.c.account_id)
    observation_query = select(*OBSERVATION_COLUMNS).join(A, A.c.id == OB.c.account_id)
    for account, con_ids in _by_account(keys).items():
        for chunk in chunks(con_ids):
            where_x = (A.c.code == account, X.c.con_id.in_(chunk))
            # `.all()`: one fetchall, not a fetchone per row (a re-fold reads 1,000s of fills).
            for row in session.execute(fill_query.where(*where_x)).all():
                fill = fill_from(row)
                latest = fills.setdefault(fill.key, {})
                base = base_exec_id(fill.exec_id)
                held = latest.get(base)
                if held is None or correction_rank(fill.exec_id) > correction_rank(held.exec_id):
                    latest[base] = fill
            where_o = (A.c.code == account, OB.c.con_id.in_(chunk))
            observed_rows = session.execute(observation_query.where(*where_o).order_by(OB.c.id))
            for row in observed_rows.all():
                observation = observation_from(row)
                observed = (observation.account, observation.con_id)
                observations.setdefault(observed, []).append(observation)
    ids = [life.id for lives in lifecycles.values() for life in lives if life.id is not None]
    events: dict[int, list[StoredEvent]] = {}
    for chunk in chunks(sorted(ids)):
        rows = session.execute(
            select(*EVENT_COLUMNS).where(E.c.position_id.in_(chunk)).order_by(E.c.id)
        )
        for row in rows.all():
            events.setdefault(row[1], []).append(event_from(row))
    out = {}
    for key in keys:
        lives = sorted(lifecycles.get(key, ()), key=lambda life: life.id or 0)
        out[key] = StoredHistory(
            tuple(lives),
            tuple(fills.get(key, {}).values()),
            tuple(observations.get(key, ())),
            {life.id: events.get(life.id, []) for life in lives if life.id is not None},
        )
    return out


# ---------------------------------------------------------------------------- lifecycles
def positions(session: Session, *, include_closed: bool = False) -> list[Lifecycle]:
    """Cached lifecycles: OPEN only, or every one; in `position_order`."""
    query = select(*POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    if not include_closed:
        query = query.where(P.c.status == PositionStatus.OPEN.value)
    query = query.order_by(A.c.code, P.c.symbol, P.c.id)
    return [lifecycle_from(row) for row in session.execute(query)]


def positions_besides(
    session: Session, accounts: Iterable[str], *, include_closed: bool = False
) -> list[Lifecycle]:
    """`positions()` without the OPEN lifecycles with a conId of `accounts` (load_state's rows
    for those accounts); in `position_order`."""
    query = select(*POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    codes = sorted(accounts)
    held = sa_or(P.c.con_id.is_(None), A.c.code.not_in(codes) if codes else sa_true())
    if include_closed:
        query = query.where(sa_or(P.c.status != PositionStatus.OPEN.value, held))
    else:
        query = query.where(P.c.status == PositionStatus.OPEN.value, held)
    query = query.order_by(A.c.code, P.c.symbol, P.c.id)
    return [lifecycle_from(row) for row in session.execute(query)]


def unkeyed_open_ids(session: Session) -> set[int]:
    """Ids of the OPEN lifecycles without a conId (a seed's rows not adopted yet; usually none):
    `load_state` skips them, and `lifecycle_from` reads their NULL conId as 0."""
    query = select(P.c.id).where(P.c.status == PositionStatus.OPEN.value, P.c.con_id.is_(None))
    return set(session.scalars(query))


def position_order(life: Lifecycle) -> tuple[str, str, int]:
    """The order `positions()` returns lifecycles in (account code, symbol, row id)."""
    return (life.account, life.contract.symbol, life.id or 0)


def lifecycles_for(session: Session, keys: Iterable[PositionKey]) -> list[Lifecycle]:
    """Every lifecycle (open and closed) of these (account, conId) keys."""
    found: list[Lifecycle] = []
    query = select(*POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    # Per account, through the (account_id, con_id) index: the window reloads the keys of every
    # selective sync, and a bare con_id IN would read the whole table each time.
    for account, con_ids in _by_account(keys).items():
        for chunk in chunks(con_ids):
            rows = session.execute(query.where(A.c.code == account, P.c.con_id.in_(chunk)))
            found.extend(lifecycle_from(row) for row in rows.all())
    return found


def position(session: Session, position_id: int) -> Lifecycle | None:
    """One lifecycle by id."""
    query = select(*POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    row = session.execute(query.where(P.c.id == position_id)).first()
    return lifecycle_from(row) if row is not None else None


def missing_at_broker(session: Session) -> list[Lifecycle]:
    """OPEN lifecycles the broker stopped reporting (the warnings to resolve), oldest first."""
    query = (
        select(*POSITION_COLUMNS)
        .join(A, A.c.id == P.c.account_id)
        .where(P.c.status == PositionStatus.OPEN.value, P.c.missing_since.is_not(None))
        .order_by(P.c.missing_since, P.c.id)
    )
    return [lifecycle_from(row) for row in session.execute(query)]


def position_counts(session: Session) -> dict[str, int]:
    """Number of lifecycles by status."""
    rows = session.execute(select(P.c.status, func.count()).group_by(P.c.status)).all()
    return {status: count for status, count in rows}


def account_codes(session: Session) -> list[str]:
    """Every known account code."""
    return list(session.scalars(select(A.c.code).order_by(A.c.code)))


# ---------------------------------------------------------------------------- events, fills
def events(session: Session, position_id: int) -> list[StoredEvent]:
    """A lifecycle's history, oldest first."""
    rows = session.execute(
        select(*EVENT_COLUMNS).where(E.c.position_id == position_id).order_by(E.c.id)
    )
    return [event_from(r) for r in rows]


def all_events(session: Session) -> list[StoredEvent]:
    """Every lifecycle's events, in the order they were written (exports)."""
    return [event_from(r) for r in session.execute(select(*EVENT_COLUMNS).order_by(E.c.id))]


def all_fills(session: Session) -> list[Fill]:
    """Every stored fill, oldest first (exports)."""
    query = select(*FILL_COLUMNS).join(A, A.c.id == X.c.account_id)
    return [fill_from(row) for row in session.execute(query.order_by(X.c.time, X.c.exec_id))]


def fills_for(session: Session, key: PositionKey, since: datetime | None = None) -> list[Fill]:
    """Stored fills of one (account, conId), oldest first."""
    account, con_id = key
    query = (
        select(*FILL_COLUMNS)
        .join(A, A.c.id == X.c.account_id)
        .where(A.c.code == account, X.c.con_id == con_id)
    )
    if since is not None:
        query = query.where(X.c.time >= since)
    return [fill_from(row) for row in session.execute(query.order_by(X.c.time, X.c.exec_id))]


# ---------------------------------------------------------------------------- realized P&L
def realized_amounts(
    session: Session,
    since: datetime | None = None,
    cost_basis: CostBasis = CostBasis.AVERAGE,
) -> list[RealizedAmount]:
    """Every event that realized P&L (or could not be priced: basis `unknown`, amount NULL),
    with its lifecycle's id, account and currency and the amount's basis (charts, totals); from
    `since` on when given (the summary's realized today).

    `cost_basis` picks the figure: the average-cost amount, or the event's FIFO amount with its
    own basis (an event folded before FIFO was derived has none: unknown until its key is
    folded again). The events are the same either way: those that realize at average cost.
    """
    query = (
        select(*realized_columns(cost_basis is CostBasis.FIFO))
        .select_from(E)
        .join(P, P.c.id == E.c.position_id)
        .join(A, A.c.id == P.c.account_id)
        .where(sa_or(E.c.realized_pnl.is_not(None), E.c.pnl_basis == PnlBasis.UNKNOWN.value))
        .order_by(E.c.occurred_at, E.c.id)
    )
    if since is not None:
        query = query.where(E.c.occurred_at >= since)
    return realized_amounts_from(session.execute(query))


def realized_total(session: Session, cost_basis: CostBasis = CostBasis.AVERAGE) -> ByCurrency:
    """Realized P&L per currency over every lifecycle, exact and estimated apart (in Python:
    the columns are exact text, and currencies are never added); under FIFO, the events' FIFO
    amounts by their own basis (app.domain.realized.lifecycle_totals, as the window sums them)."""
    if cost_basis is CostBasis.FIFO:
        return lifecycle_totals(
            positions(session, include_closed=True),
            cost_basis,
            realized_amounts(session, cost_basis=cost_basis),
        )
    return totals_from_parts(total_parts(session.execute(select(*TOTAL_COLUMNS))))


# ---------------------------------------------------------------------------- runs, status
def sync_runs(session: Session, limit: int = 200) -> list[SyncRun]:
    """The latest runs, newest first."""
    rows = session.execute(select(R).order_by(R.c.id.desc()).limit(limit))
    return [sync_run_from(r) for r in rows]


def last_success(session: Session) -> SyncRun | None:
    """The latest run that committed a complete snapshot."""
    row = session.execute(
        select(R).where(R.c.status == SyncStatus.OK.value).order_by(R.c.id.desc()).limit(1)
    ).first()
    return sync_run_from(row) if row is not None else None


def sync_stats(session: Session, window: int = 100) -> SyncStats:
    """Success rate and durations over the last `window` runs."""
    runs = sync_runs(session, window)
    durations = [r.duration_ms for r in runs if r.duration_ms is not None]
    return SyncStats(
        runs=len(runs),
        ok=sum(r.status is SyncStatus.OK for r in runs),
        failed=sum(r.status is SyncStatus.FAILED for r in runs),
        skipped=sum(r.status is SyncStatus.SKIPPED for r in runs),
        mean_duration_ms=sum(durations) / len(durations) if durations else None,
        max_duration_ms=max(durations) if durations else None,
    )


def ledger_status(
    session: Session,
    database: str,
    revision: str | None,
    cost_basis: CostBasis = CostBasis.AVERAGE,
) -> LedgerStatus:
    """Everything `status` reports, from the cache alone; realized totals by `cost_basis`."""
    counts = position_counts(session)
    runs = sync_runs(session, 1)
    return LedgerStatus(
        database=database,
        revision=revision,
        open_positions=counts.get(PositionStatus.OPEN.value, 0),
        closed_positions=counts.get(PositionStatus.CLOSED.value, 0),
        accounts=tuple(account_codes(session)),
        last_run=runs[0] if runs else None,
        last_success=last_success(session),
        stats=sync_stats(session),
        missing_at_broker=tuple(missing_at_broker(session)),
        realized_by_currency=realized_total(session, cost_basis),
        cost_basis=cost_basis,
        exchange_rates=tuple(rates.latest_rates(session)),
        stale_prices=stale_prices(session),
        account_values=tuple(account_values.latest_account_values(session)),
        base_currencies=account_values.base_currencies(session),
    )


_FULL_TRIGGERS = tuple(
    t.value
    for t in (SyncTrigger.STARTUP, SyncTrigger.PERIODIC, SyncTrigger.MANUAL, SyncTrigger.RECONNECT)
)
"""Triggers of full syncs: each asks for every covered account's market data."""

STALE_LOOKBACK = 1_000
"""Committed runs searched for when a stale account's prices were last refreshed."""


def stale_prices(session: Session) -> tuple[StalePrices, ...]:
    """Accounts whose prices the latest committed run kept from before, each with the end of
    the latest committed full sync that refreshed them (issue 16)."""
    query = (
        select(R.c.finished_at, R.c.trigger, R.c.stale_prices)
        .where(R.c.status == SyncStatus.OK.value)
        .order_by(R.c.id.desc())
        .limit(STALE_LOOKBACK)
    )
    rows = session.execute(query).all()
    if not rows or not rows[0].stale_prices:
        return ()
    out: list[StalePrices] = []
    for account, reason in gaps(rows[0].stale_prices):
        as_of = next(
            (
                r.finished_at
                for r in rows
                if r.trigger in _FULL_TRIGGERS and account not in dict(gaps(r.stale_prices))
            ),
            None,
        )
        out.append(StalePrices(account, reason, as_of))
    return tuple(out)
