"""The ledger repository: load cached state, apply a sync plan in one transaction, queries.

Every function takes the Session that `Database.run` / `run_sync` opens inside one transaction
(so a plan, its events, its fills and its `sync_runs` row commit together — DESIGN rule 7).
Rows are read with Core selects and turned into domain values here; ORM rows never leave.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Insert, Row, Table, Update, bindparam, delete, func, insert, select, update
from sqlalchemy import or_ as sa_or
from sqlalchemy import true as sa_true
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.orm import Session

from app.db import account_values, concurrency, rates
from app.db.tables import (
    AccountRow,
    ExecutionRow,
    ObservationRow,
    PositionEventRow,
    PositionRow,
    SyncRunRow,
)
from app.domain.decimals import decimal_text
from app.domain.executions import base_exec_id, correction_rank
from app.domain.history import Observation, ObservationKind, StoredHistory
from app.domain.money import ByCurrency, totals_from_parts
from app.domain.plan import LifecycleChange, MarketUpdate, SyncPlan
from app.domain.realized import lifecycle_totals
from app.domain.records import (
    LedgerStatus,
    RunOutcome,
    StalePrices,
    StoredEvent,
    SyncRun,
    SyncStats,
)
from app.domain.series import RealizedAmount
from app.domain.values import (
    ONE,
    BrokerSnapshot,
    CloseReason,
    Contract,
    CostBasis,
    EventKind,
    Fill,
    LedgerState,
    Lifecycle,
    PnlBasis,
    PositionKey,
    PositionStatus,
    PriceSource,
    Side,
    SyncStatus,
    SyncTrigger,
)

_T = TypeVar("_T")

_CHUNK = 500  # bound parameters per statement stay far below SQLite's limit
_FILL_LOOKBACK = timedelta(days=1)  # IB reports only today's executions

P = cast(Table, PositionRow.__table__)
A = cast(Table, AccountRow.__table__)
E = cast(Table, PositionEventRow.__table__)
X = cast(Table, ExecutionRow.__table__)
R = cast(Table, SyncRunRow.__table__)
OB = cast(Table, ObservationRow.__table__)

_POSITION_COLUMNS = (
    P.c.id, A.c.code, P.c.con_id, P.c.symbol, P.c.sec_type, P.c.currency, P.c.exchange,
    P.c.local_symbol, P.c.multiplier, P.c.expiry, P.c.strike, P.c.right, P.c.quantity,
    P.c.average_price, P.c.status, P.c.opened_at, P.c.average_cost, P.c.current_price,
    P.c.market_value, P.c.unrealized_pnl, P.c.unrealized_pnl_pct, P.c.realized_pnl,
    P.c.closed_at, P.c.close_reason, P.c.last_synced_at, P.c.missing_since,
    P.c.entry_trade_id, P.c.exit_trade_id, P.c.realized_pnl_estimated, P.c.pnl_basis,
)  # fmt: skip


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------- conversions
# Enum lookups by value: calling the Enum class per row costs more than the rest of the row.
_STATUSES = {s.value: s for s in PositionStatus}
_CLOSE_REASONS = {r.value: r for r in CloseReason}
_BASES = {b.value: b for b in PnlBasis}
_SIDES = {s.value: s for s in Side}


def _lifecycle(row: Sequence[Any]) -> Lifecycle:
    (pid, code, con_id, symbol, sec_type, currency, exchange, local_symbol, multiplier, expiry,
     strike, right, quantity, average_price, status, opened_at, average_cost, current_price,
     market_value, unrealized, unrealized_pct, realized, closed_at, close_reason, last_synced_at,
     missing_since, entry, exit_, estimated, basis) = row  # fmt: skip
    contract = Contract(
        con_id=con_id or 0,
        symbol=symbol,
        sec_type=sec_type or "STK",
        currency=currency or "",
        exchange=exchange or "",
        local_symbol=local_symbol or "",
        multiplier=multiplier if multiplier is not None else Decimal(1),
        expiry=expiry or "",
        strike=strike,
        right=right or "",
    )
    return Lifecycle(
        id=pid,
        account=code,
        contract=contract,
        quantity=quantity,
        average_price=average_price,
        status=_STATUSES[status],
        opened_at=opened_at,
        average_cost=average_cost,
        current_price=current_price,
        market_value=market_value,
        unrealized_pnl=unrealized,
        unrealized_pnl_pct=unrealized_pct,
        realized_pnl=realized if realized is not None else Decimal(0),
        closed_at=closed_at,
        close_reason=_CLOSE_REASONS[close_reason] if close_reason else None,
        last_synced_at=last_synced_at,
        missing_since=missing_since,
        entry_trade_id=entry,
        exit_trade_id=exit_,
        realized_pnl_estimated=estimated if estimated is not None else Decimal(0),
        pnl_basis=_BASES[basis] if basis else None,
    )


_POSITION_NAMES = (
    "account_id", "con_id", "symbol", "sec_type", "currency", "exchange", "local_symbol",
    "multiplier", "expiry", "strike", "right", "quantity", "average_price", "average_cost",
    "current_price", "market_value", "unrealized_pnl", "unrealized_pnl_pct", "realized_pnl",
    "status", "opened_at", "closed_at", "close_reason", "last_synced_at", "missing_since",
    "entry_trade_id", "exit_trade_id", "realized_pnl_estimated", "pnl_basis",
)  # fmt: skip


def _position_values(life: Lifecycle, account_id: int) -> tuple[Any, ...]:
    """A lifecycle's `positions` columns (but `id`), in _POSITION_NAMES order."""
    c = life.contract
    return (
        account_id, c.con_id, c.symbol, c.sec_type, c.currency, c.exchange, c.local_symbol,
        c.multiplier, c.expiry or None, c.strike, c.right or None, life.quantity,
        life.average_price, life.average_cost, life.current_price, life.market_value,
        life.unrealized_pnl, life.unrealized_pnl_pct, life.realized_pnl, life.status.value,
        life.opened_at, life.closed_at, life.close_reason.value if life.close_reason else None,
        life.last_synced_at or life.opened_at, life.missing_since, life.entry_trade_id,
        life.exit_trade_id, life.realized_pnl_estimated,
        life.pnl_basis.value if life.pnl_basis else None,
    )  # fmt: skip


def as_stored(life: Lifecycle, position_id: int) -> Lifecycle:
    """The lifecycle exactly as `positions()` / `load_state()` would read it back after it was
    written as row `position_id` (SQLite): equal, and with the same Decimal digits and tz.

    The common case is checked field by field: decimals come back as their canonical text
    (`Decimal(decimal_text(v))`, the very object when already canonical), UTC datetimes as they
    are. Anything unusual (another time zone, an empty sec_type, no last_synced_at) takes the
    real round trip through the columns' processors and `_lifecycle`.
    """
    c = life.contract
    if not (
        c.sec_type
        and life.last_synced_at is not None
        and life.realized_pnl is not None
        and life.realized_pnl_estimated is not None
        and c.multiplier is not None
        and _decimal_kept(c.multiplier)
        and _decimal_kept(c.strike)
        and _utc(life.opened_at)
        and _utc(life.closed_at)
        and _utc(life.last_synced_at)
        and _utc(life.missing_since)
    ):
        return _round_trip(life, position_id)
    return _stored(life, position_id, life.average_price, life.average_cost,
                   life.current_price, life.market_value, life.unrealized_pnl,
                   life.unrealized_pnl_pct, life.last_synced_at)  # fmt: skip


def with_market(
    life: Lifecycle,
    average_price: Decimal,
    average_cost: Decimal | None,
    current_price: Decimal | None,
    market_value: Decimal | None,
    unrealized_pnl: Decimal | None,
    unrealized_pnl_pct: Decimal | None,
    at: datetime,
) -> Lifecycle:
    """`life` (as stored) once a market update and `last_synced_at = at` are written."""
    assert life.id is not None
    if not _utc(at):
        return as_stored(
            replace(
                life,
                average_price=average_price,
                average_cost=average_cost,
                current_price=current_price,
                market_value=market_value,
                unrealized_pnl=unrealized_pnl,
                unrealized_pnl_pct=unrealized_pnl_pct,
                last_synced_at=at,
            ),
            life.id,
        )
    # Only the new values need checking: the rest of `life` is already as stored.
    return Lifecycle(
        life.id, life.account, life.contract, life.quantity, _decimal_back(average_price),
        life.status, life.opened_at, _maybe_back(average_cost), _maybe_back(current_price),
        _maybe_back(market_value), _maybe_back(unrealized_pnl), _maybe_back(unrealized_pnl_pct),
        life.realized_pnl, life.closed_at, life.close_reason, at, life.missing_since,
        life.entry_trade_id, life.exit_trade_id, life.realized_pnl_estimated, life.pnl_basis,
    )  # fmt: skip


def with_last_synced(life: Lifecycle, at: datetime) -> Lifecycle:
    """`life` (as stored) once its `last_synced_at` moved to `at`."""
    if not _utc(at):
        return _round_trip(replace(life, last_synced_at=at), life.id or 0)
    # Positional, not dataclasses.replace: a full sync does this for every position.
    return Lifecycle(
        life.id, life.account, life.contract, life.quantity, life.average_price, life.status,
        life.opened_at, life.average_cost, life.current_price, life.market_value,
        life.unrealized_pnl, life.unrealized_pnl_pct, life.realized_pnl, life.closed_at,
        life.close_reason, at, life.missing_since, life.entry_trade_id, life.exit_trade_id,
        life.realized_pnl_estimated, life.pnl_basis,
    )  # fmt: skip


def _stored(
    life: Lifecycle,
    position_id: int,
    average_price: Decimal,
    average_cost: Decimal | None,
    current_price: Decimal | None,
    market_value: Decimal | None,
    unrealized_pnl: Decimal | None,
    unrealized_pnl_pct: Decimal | None,
    last_synced_at: datetime,
) -> Lifecycle:
    # The contract and the datetimes are already known to come back unchanged.
    return Lifecycle(
        position_id, life.account, life.contract, _decimal_back(life.quantity),
        _decimal_back(average_price), life.status, life.opened_at, _maybe_back(average_cost),
        _maybe_back(current_price), _maybe_back(market_value), _maybe_back(unrealized_pnl),
        _maybe_back(unrealized_pnl_pct), _decimal_back(life.realized_pnl), life.closed_at,
        life.close_reason, last_synced_at, life.missing_since, life.entry_trade_id,
        life.exit_trade_id, _decimal_back(life.realized_pnl_estimated), life.pnl_basis,
    )  # fmt: skip


def _utc(moment: datetime | None) -> bool:
    """True when the database gives `moment` back as the very same value (or it is None)."""
    return moment is None or (
        moment.__class__ is datetime and moment.tzinfo is UTC and not moment.fold
    )


def _decimal_kept(value: Decimal | None) -> bool:
    """True when the database gives `value` back as the same digits (canonical text)."""
    if value is None:
        return True
    if value.__class__ is not Decimal or not value.is_finite():
        return False
    text = str(value)
    last = text[-1]
    if "E" in text or "e" in text:
        return False
    return "0" < last <= "9" or (last == "0" and "." not in text and text != "-0")


def _decimal_back(value: Decimal) -> Decimal:
    """What the database gives back for a stored decimal (ExactDecimal on SQLite)."""
    if _decimal_kept(value):
        return value
    return Decimal(decimal_text(Decimal(value)))  # an int too, as ExactDecimal binds it


def _maybe_back(value: Decimal | None) -> Decimal | None:
    return None if value is None else _decimal_back(value)


def _round_trip(life: Lifecycle, position_id: int) -> Lifecycle:
    """Through the SQLite columns' bind and result processors, then `_lifecycle`."""
    values = []
    for value, (bind, result) in zip(_position_values(life, 0), _sqlite_processors(), strict=True):
        stored = bind(value) if bind is not None and value is not None else value
        values.append(result(stored) if result is not None and stored is not None else stored)
    by_name = dict(zip(_POSITION_NAMES, values, strict=True))
    row = [position_id, life.account]
    row += [by_name[column.name] for column in _POSITION_COLUMNS[2:]]
    return _lifecycle(row)


@functools.cache
def _sqlite_processors() -> list[tuple[Any, Any]]:
    """(bind, result) processors of the _POSITION_NAMES columns on SQLite."""
    dialect = sqlite_dialect()
    out = []
    for name in _POSITION_NAMES:
        kind = P.c[name].type.dialect_impl(dialect)
        out.append((kind.bind_processor(dialect), kind.result_processor(dialect, None)))
    return out


def _fill(row: Sequence[Any]) -> Fill:
    (exec_id, code, con_id, symbol, side, shares, price, time, perm_id, order_ref, commission,
     commission_currency, realized, seen_at, magnifier, fifo) = row  # fmt: skip
    return Fill(
        exec_id=exec_id,
        account=code,
        contract=Contract(con_id, symbol),
        side=_SIDES[side],
        shares=shares,
        price=price,
        time=time,
        perm_id=perm_id or 0,
        order_ref=order_ref or "",
        commission=commission,
        commission_currency=commission_currency or "",
        realized_pnl=realized,
        seen_at=seen_at,
        price_magnifier=Decimal(magnifier) if magnifier else ONE,
        fifo_realized_pnl=fifo,
    )


_FILL_COLUMNS = (
    X.c.exec_id, A.c.code, X.c.con_id, X.c.symbol, X.c.side, X.c.shares, X.c.price, X.c.time,
    X.c.perm_id, X.c.order_ref, X.c.commission, X.c.commission_currency, X.c.realized_pnl,
    X.c.seen_at, X.c.price_magnifier, X.c.fifo_pnl_realized,
)  # fmt: skip


def fill_values(fill: Fill, account_id: int) -> dict[str, Any]:
    """One `executions` row's values (an insert's parameters)."""
    return {
        "exec_id": fill.exec_id,
        "account_id": account_id,
        "con_id": fill.contract.con_id,
        "symbol": fill.contract.symbol,
        "side": fill.side.value,
        "shares": fill.shares,
        "price": fill.price,
        "time": fill.time,
        "perm_id": fill.perm_id or None,
        "order_ref": fill.order_ref or None,
        "commission": fill.commission,
        "commission_currency": fill.commission_currency or None,
        "realized_pnl": fill.realized_pnl,
        "seen_at": fill.seen_at,
        "price_magnifier": None if fill.price_magnifier == ONE else int(fill.price_magnifier),
        "fifo_pnl_realized": fill.fifo_realized_pnl,
    }


_FILL_NAMES = (
    "exec_id", "account_id", "con_id", "symbol", "side", "shares", "price", "time", "perm_id",
    "order_ref", "commission", "commission_currency", "realized_pnl", "seen_at",
    "price_magnifier", "fifo_pnl_realized",
)  # fmt: skip


def insert_fills(session: Session, fills: Sequence[Fill], ids: dict[str, int]) -> None:
    """Insert `executions` rows (a statement's tens of thousands: the executemany fast path)."""
    rows = []
    for fill in fills:
        values = fill_values(fill, ids[fill.account])
        rows.append(tuple(values[name] for name in _FILL_NAMES))
    _executemany(session, insert(X), _FILL_NAMES, rows)


def _sync_run(row: Row[Any]) -> SyncRun:
    return SyncRun(
        id=row.id,
        trigger=SyncTrigger(row.trigger),
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=SyncStatus(row.status),
        positions_seen=row.positions_seen,
        opened=row.opened,
        updated=row.updated,
        closed=row.closed,
        missing=row.missing,
        duration_ms=row.duration_ms,
        error=row.error,
        stale_prices=_gaps(row.stale_prices),
        fills_unavailable=row.fills_unavailable,
    )


def _gaps_text(stale: tuple[tuple[str, str], ...]) -> str | None:
    """`sync_runs.stale_prices`: a JSON object account -> why, or NULL for none."""
    return json.dumps(dict(stale), sort_keys=True) if stale else None


def _gaps(text: str | None) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    try:
        stored = json.loads(text)
    except ValueError:
        return (("?", text),)  # written by another tool: shown as it is
    if not isinstance(stored, dict):
        return (("?", text),)
    return tuple(sorted((str(k), str(v)) for k, v in stored.items()))


# ---------------------------------------------------------------------------- accounts
def account_ids(session: Session, codes: Iterable[str], *, create: bool) -> dict[str, int]:
    """Ids of the accounts with these IB codes; missing ones are inserted when `create`."""
    wanted = sorted(set(codes))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        found.update(session.execute(select(A.c.code, A.c.id).where(A.c.code.in_(chunk))).all())
    missing = [code for code in wanted if code not in found]
    if missing and create:
        session.execute(insert(A), [{"code": code} for code in missing])
        for chunk in _chunks(missing):
            found.update(session.execute(select(A.c.code, A.c.id).where(A.c.code.in_(chunk))).all())
    return found


def _by_account(keys: Iterable[PositionKey]) -> dict[str, list[int]]:
    """conIds by account, sorted: lookups through the (account_id, con_id) indexes."""
    grouped: dict[str, list[int]] = {}
    for account, con_id in sorted(set(keys)):
        grouped.setdefault(account, []).append(con_id)
    return grouped


# ---------------------------------------------------------------------------- sync
def load_state(session: Session, snapshot: BrokerSnapshot) -> LedgerState:
    """The cached OPEN lifecycles of the snapshot's accounts (or scope) and the fills it replays."""
    query = (
        select(*_POSITION_COLUMNS)
        .join(A, A.c.id == P.c.account_id)
        .where(P.c.status == PositionStatus.OPEN.value, P.c.con_id.is_not(None))
    )
    if snapshot.scope is not None:
        # Per account, so the lookup goes through the (account_id, con_id) index and costs the
        # same however many positions are cached (a bare con_id IN scans every OPEN row).
        rows: list[Sequence[Any]] = []
        for account, con_ids in _by_account(snapshot.scope).items():
            for chunk in _chunks(con_ids):
                where = (A.c.code == account, P.c.con_id.in_(chunk))
                rows.extend(session.execute(query.where(*where)).all())
    else:
        rows = list(session.execute(query.where(A.c.code.in_(sorted(snapshot.accounts)))).all())
    positions = {}
    for row in rows:
        life = _lifecycle(row)
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
    stmt = select(*_FILL_COLUMNS).join(A, A.c.id == X.c.account_id)
    for chunk in _chunks(sorted(wanted)):
        for row in session.execute(stmt.where(X.c.exec_id.in_(chunk))):
            fill = _fill(row)
            base = base_exec_id(fill.exec_id)
            held = known.get(base)
            if held is None or correction_rank(fill.exec_id) > correction_rank(held.exec_id):
                known[base] = fill
    return known


_MARKET_NAMES = (
    "row_id", "average_price", "average_cost", "current_price", "market_value", "unrealized_pnl",
    "unrealized_pnl_pct",
)  # fmt: skip


def apply_plan(
    session: Session, plan: SyncPlan, outcome: RunOutcome, opened: list[int] | None = None
) -> int:
    """Write a plan and its `sync_runs` row in the caller's transaction; returns the run id.

    A plan made from an incomplete snapshot writes only the (failed) run row. `opened` receives
    the ids of the lifecycles the plan creates, in the order of its changes.
    """
    counts = plan.counts
    run_id = session.execute(
        insert(R).returning(R.c.id),
        {
            "trigger": outcome.trigger.value,
            "started_at": outcome.started_at,
            "finished_at": outcome.finished_at,
            "status": outcome.status.value,
            "positions_seen": outcome.positions_seen or plan.positions_seen,
            "opened": counts.get("opened", 0),
            "updated": counts.get("updated", 0),
            "closed": counts.get("closed", 0),
            "missing": counts.get("missing", 0),
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
            "stale_prices": _gaps_text(outcome.stale_prices),
            "fills_unavailable": outcome.fills_unavailable,
        },
    ).scalar_one()
    if outcome.status is not SyncStatus.OK or plan.incomplete_reason is not None:
        return int(run_id)

    codes = set(plan.accounts)
    codes.update(c.after.account for c in plan.changes)
    codes.update(f.account for f in plan.new_fills)
    codes.update(c.fill.account for c in plan.corrections)
    ids = account_ids(session, codes, create=True)

    _delete_lifecycles(session, plan.deleted_position_ids)
    new_ids = _write_changes(session, plan.changes, ids, run_id)
    _insert_observations(session, plan.new_observations, ids, run_id)
    if opened is not None:
        opened.extend(new_ids)
    _executemany(
        session,
        _UPDATE_BY_ID,
        _MARKET_NAMES,
        [
            (
                u.position_id,
                u.average_price,
                u.average_cost,
                u.current_price,
                u.market_value,
                u.unrealized_pnl,
                u.unrealized_pnl_pct,
            )
            for u in sorted(plan.market_updates, key=_by_position)
        ],
    )
    # In id order: the rows are then visited in the table's own order (fewer pages touched).
    for chunk in _chunks(sorted(plan.seen_position_ids)):
        session.execute(_SEEN, {"ids": chunk, "synced_at": plan.synced_at})
    for correction in plan.corrections:
        session.execute(delete(X).where(X.c.exec_id == correction.replaced_exec_id))
    fills = [*plan.new_fills, *(c.fill for c in plan.corrections)]
    if fills:
        session.execute(insert(X), [fill_values(f, ids[f.account]) for f in fills])
    return int(run_id)


def _by_position(update: MarketUpdate) -> int:
    return update.position_id


def _executemany(
    session: Session,
    statement: Insert | Update,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Run `statement` once per row; each row holds the values of `names`, in that order.

    On SQLite the values go through the columns' own bind processors here and the rows straight
    to the driver's executemany: SQLAlchemy's per-row parameter handling costs more than
    SQLite's own work for the 20,000 rows of a large sync. Elsewhere, a Core executemany.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    if dialect.paramstyle != "qmark":
        session.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])
        return
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    assert compiled.positiontup is not None
    where = {name: i for i, name in enumerate(names)}
    order = [where[name] for name in compiled.positiontup]
    in_order = order == list(range(len(names)))
    processors = []
    for slot, name in enumerate(compiled.positiontup):
        processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((slot, processor))
    params: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row) if in_order else [row[i] for i in order]
        for slot, processor in processors:
            value = values[slot]
            if value is not None:  # every processor of ours maps None to None
                values[slot] = processor(value)
        params.append(tuple(values))
    session.connection().exec_driver_sql(compiled.string, params)


def _insert_positions(session: Session, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert position rows (_POSITION_NAMES order); returns their ids in the order of `rows`."""
    if session.get_bind().dialect.name != "sqlite":
        statement = insert(P).returning(P.c.id, sort_by_parameter_order=True)
        return list(
            session.scalars(statement, [dict(zip(_POSITION_NAMES, r, strict=True)) for r in rows])
        )
    # SQLite cannot return ids of a batched insert in order, so SQLAlchemy would send one
    # statement per row (20,000 of them in a first sync). The transaction already holds the
    # write lock (BEGIN IMMEDIATE), so number the rows as SQLite itself would — max(id) + 1 on —
    # and insert them in one executemany.
    first = session.execute(select(func.coalesce(func.max(P.c.id), 0))).scalar_one() + 1
    ids = list(range(first, first + len(rows)))
    numbered = [(i, *row) for i, row in zip(ids, rows, strict=True)]
    _executemany(session, insert(P), ("id", *_POSITION_NAMES), numbered)
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

_EVENT_NAMES = (
    "position_id", "sync_run_id", "kind", "occurred_at", "quantity_before", "quantity_after",
    "price", "price_source", "realized_pnl", "broker_realized_pnl", "exec_ids", "note",
    "pnl_basis", "realized_pnl_fifo", "pnl_basis_fifo",
)  # fmt: skip
_NO_FIFO = len(_EVENT_NAMES) - 2
"""Without the two FIFO columns: a batch in which no event realizes anything (a first sync's
20,000 openings) binds 40,000 NULLs fewer."""


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
    for chunk in _chunks(replaced):
        session.execute(delete(E).where(E.c.position_id.in_(chunk)))
    _executemany(
        session,
        _UPDATE_BY_ID,
        ("row_id", *_POSITION_NAMES),
        [
            (c.before.id, *_position_values(c.after, account_ids_by_code[c.after.account]))
            for c in existing
            if c.before is not None
        ],
    )
    new = [c for c in changes if c.before is None]
    new_ids: list[int] = []
    if new:
        rows = [_position_values(c.after, account_ids_by_code[c.after.account]) for c in new]
        new_ids = _insert_positions(session, rows)
    position_ids = [c.before.id for c in existing if c.before is not None] + new_ids
    events = [
        (
            pid,
            run_id,
            e.kind.value,
            e.occurred_at,
            e.quantity_before,
            e.quantity_after,
            e.price,
            e.price_source.value if e.price_source else None,
            e.realized_pnl,
            e.broker_realized_pnl,
            ",".join(e.exec_ids) or None,
            e.note or None,
            e.pnl_basis.value if e.pnl_basis else None,
            e.realized_pnl_fifo,
            e.pnl_basis_fifo.value if e.pnl_basis_fifo else None,
        )
        for pid, change in zip(position_ids, [*existing, *new], strict=True)
        for e in change.events
    ]
    if any(row[-1] is not None or row[-2] is not None for row in events):
        _executemany(session, insert(E), _EVENT_NAMES, events)
    else:
        _executemany(session, insert(E), _EVENT_NAMES[:_NO_FIFO], [r[:_NO_FIFO] for r in events])
    return new_ids


def _delete_lifecycles(session: Session, position_ids: Sequence[int]) -> None:
    """Lifecycles a fold no longer derives, with their events."""
    for chunk in _chunks(list(position_ids)):
        session.execute(delete(E).where(E.c.position_id.in_(chunk)))
        session.execute(delete(P).where(P.c.id.in_(chunk)))


_OBSERVATION_NAMES = (
    "account_id", "con_id", "kind", "observed_at", "quantity", "average_cost", "price", "note",
    "sync_run_id", "paired_con_id", "paired_quantity", "paired_average_cost",
)  # fmt: skip


def _insert_observations(
    session: Session,
    observations: Sequence[Observation],
    account_ids_by_code: dict[str, int],
    run_id: int | None,
) -> None:
    rows = [
        (account_ids_by_code[o.account], o.con_id, o.kind.value, o.at, o.quantity,
         o.average_cost, o.price, o.note or None, run_id, o.paired_con_id, o.paired_quantity,
         o.paired_average_cost)
        for o in observations
    ]  # fmt: skip
    _executemany(session, insert(OB), _OBSERVATION_NAMES, rows)


def record_observation(session: Session, observation: Observation) -> None:
    """Store one observation outside a sync (the user's Mark closed, a statement's confirmation)."""
    ids = account_ids(session, [observation.account], create=False)
    _insert_observations(session, [observation], ids, None)


_OBSERVATION_KINDS = {k.value: k for k in ObservationKind}


def load_histories(
    session: Session, keys: Sequence[PositionKey]
) -> dict[PositionKey, StoredHistory]:
    """Every stored fact of these keys, and their lifecycles with their events (a re-fold)."""
    lifecycles: dict[PositionKey, list[Lifecycle]] = {}
    for life in lifecycles_for(session, keys):
        lifecycles.setdefault(life.key, []).append(life)
    fills: dict[PositionKey, dict[str, Fill]] = {}
    observations: dict[PositionKey, list[Observation]] = {}
    fill_query = select(*_FILL_COLUMNS).join(A, A.c.id == X.c.account_id)
    observation_query = select(
        OB.c.id, A.c.code, OB.c.con_id, OB.c.kind, OB.c.observed_at, OB.c.quantity,
        OB.c.average_cost, OB.c.price, OB.c.note, OB.c.paired_con_id, OB.c.paired_quantity,
        OB.c.paired_average_cost,
    ).join(A, A.c.id == OB.c.account_id)  # fmt: skip
    for account, con_ids in _by_account(keys).items():
        for chunk in _chunks(con_ids):
            where_x = (A.c.code == account, X.c.con_id.in_(chunk))
            for row in session.execute(fill_query.where(*where_x)):
                fill = _fill(row)
                latest = fills.setdefault(fill.key, {})
                base = base_exec_id(fill.exec_id)
                held = latest.get(base)
                if held is None or correction_rank(fill.exec_id) > correction_rank(held.exec_id):
                    latest[base] = fill
            where_o = (A.c.code == account, OB.c.con_id.in_(chunk))
            for row in session.execute(observation_query.where(*where_o).order_by(OB.c.id)):
                oid, code, con_id, kind, at, quantity, cost, price, note = row[:9]
                observations.setdefault((code, con_id), []).append(
                    Observation(
                        code,
                        con_id,
                        _OBSERVATION_KINDS[kind],
                        at,
                        quantity,
                        cost,
                        price,
                        note or "",
                        oid,
                        *row[9:],
                    )
                )
    ids = [life.id for lives in lifecycles.values() for life in lives if life.id is not None]
    events: dict[int, list[StoredEvent]] = {}
    for chunk in _chunks(sorted(ids)):
        rows = session.execute(
            select(*_EVENT_COLUMNS).where(E.c.position_id.in_(chunk)).order_by(E.c.id)
        )
        for row in rows:
            events.setdefault(row[1], []).append(_stored_event(row))
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


# ---------------------------------------------------------------------------- queries
def positions(session: Session, *, include_closed: bool = False) -> list[Lifecycle]:
    """Cached lifecycles: OPEN only, or every one; in `position_order`."""
    query = select(*_POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    if not include_closed:
        query = query.where(P.c.status == PositionStatus.OPEN.value)
    query = query.order_by(A.c.code, P.c.symbol, P.c.id)
    return [_lifecycle(row) for row in session.execute(query)]


def positions_besides(
    session: Session, accounts: Iterable[str], *, include_closed: bool = False
) -> list[Lifecycle]:
    """`positions()` without the OPEN lifecycles with a conId of `accounts` (load_state's rows
    for those accounts); in `position_order`."""
    query = select(*_POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    codes = sorted(accounts)
    held = sa_or(P.c.con_id.is_(None), A.c.code.not_in(codes) if codes else sa_true())
    if include_closed:
        query = query.where(sa_or(P.c.status != PositionStatus.OPEN.value, held))
    else:
        query = query.where(P.c.status == PositionStatus.OPEN.value, held)
    query = query.order_by(A.c.code, P.c.symbol, P.c.id)
    return [_lifecycle(row) for row in session.execute(query)]


def position_order(life: Lifecycle) -> tuple[str, str, int]:
    """The order `positions()` returns lifecycles in (account code, symbol, row id)."""
    return (life.account, life.contract.symbol, life.id or 0)


def lifecycles_for(session: Session, keys: Iterable[PositionKey]) -> list[Lifecycle]:
    """Every lifecycle (open and closed) of these (account, conId) keys."""
    found: list[Lifecycle] = []
    query = select(*_POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    # Per account, through the (account_id, con_id) index: the window reloads the keys of every
    # selective sync, and a bare con_id IN would read the whole table each time.
    for account, con_ids in _by_account(keys).items():
        for chunk in _chunks(con_ids):
            rows = session.execute(query.where(A.c.code == account, P.c.con_id.in_(chunk)))
            found.extend(_lifecycle(row) for row in rows.all())
    return found


def position(session: Session, position_id: int) -> Lifecycle | None:
    """One lifecycle by id."""
    query = select(*_POSITION_COLUMNS).join(A, A.c.id == P.c.account_id)
    row = session.execute(query.where(P.c.id == position_id)).first()
    return _lifecycle(row) if row is not None else None


_EVENT_COLUMNS = (
    E.c.id, E.c.position_id, E.c.sync_run_id, E.c.kind, E.c.occurred_at, E.c.quantity_before,
    E.c.quantity_after, E.c.price, E.c.price_source, E.c.realized_pnl, E.c.broker_realized_pnl,
    E.c.exec_ids, E.c.note, E.c.pnl_basis, E.c.realized_pnl_fifo, E.c.pnl_basis_fifo,
)  # fmt: skip
_EVENT_KINDS = {k.value: k for k in EventKind}
_PRICE_SOURCES = {s.value: s for s in PriceSource}


def _stored_event(row: Sequence[Any]) -> StoredEvent:
    """One row of `_EVENT_COLUMNS`. Positional, with the enums looked up in dicts: a re-fold
    reads every event of a key (hundreds for a day-trader's stock) inside the sync."""
    (id_, position_id, run_id, kind, at, before, after, price, source, realized, broker, exec_ids,
     note, basis, fifo, fifo_basis) = row  # fmt: skip
    return StoredEvent(
        id_, position_id, run_id, _EVENT_KINDS[kind], at, before, after, price,
        _PRICE_SOURCES[source] if source else None, realized, broker,
        tuple(exec_ids.split(",")) if exec_ids else (), note or "",
        _BASES[basis] if basis else None, fifo, _BASES[fifo_basis] if fifo_basis else None,
    )  # fmt: skip


def events(session: Session, position_id: int) -> list[StoredEvent]:
    """A lifecycle's history, oldest first."""
    rows = session.execute(
        select(*_EVENT_COLUMNS).where(E.c.position_id == position_id).order_by(E.c.id)
    )
    return [_stored_event(r) for r in rows]


def all_events(session: Session) -> list[StoredEvent]:
    """Every lifecycle's events, in the order they were written (exports)."""
    return [_stored_event(r) for r in session.execute(select(*_EVENT_COLUMNS).order_by(E.c.id))]


def all_fills(session: Session) -> list[Fill]:
    """Every stored fill, oldest first (exports)."""
    query = select(*_FILL_COLUMNS).join(A, A.c.id == X.c.account_id)
    return [_fill(row) for row in session.execute(query.order_by(X.c.time, X.c.exec_id))]


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
    fifo = cost_basis is CostBasis.FIFO
    amount = E.c.realized_pnl_fifo if fifo else E.c.realized_pnl
    basis = E.c.pnl_basis_fifo if fifo else E.c.pnl_basis
    query = (
        select(A.c.code, P.c.currency, E.c.occurred_at, amount, basis, E.c.position_id)
        .select_from(E)
        .join(P, P.c.id == E.c.position_id)
        .join(A, A.c.id == P.c.account_id)
        .where(sa_or(E.c.realized_pnl.is_not(None), E.c.pnl_basis == PnlBasis.UNKNOWN.value))
        .order_by(E.c.occurred_at, E.c.id)
    )
    if since is not None:
        query = query.where(E.c.occurred_at >= since)
    return [
        RealizedAmount(code, currency or "", at, value, _BASES[kind] if kind else None, pid)
        for code, currency, at, value, kind, pid in session.execute(query)
    ]


def fills_for(session: Session, key: PositionKey, since: datetime | None = None) -> list[Fill]:
    """Stored fills of one (account, conId), oldest first."""
    account, con_id = key
    query = (
        select(*_FILL_COLUMNS)
        .join(A, A.c.id == X.c.account_id)
        .where(A.c.code == account, X.c.con_id == con_id)
    )
    if since is not None:
        query = query.where(X.c.time >= since)
    return [_fill(row) for row in session.execute(query.order_by(X.c.time, X.c.exec_id))]


def sync_runs(session: Session, limit: int = 200) -> list[SyncRun]:
    """The latest runs, newest first."""
    rows = session.execute(select(R).order_by(R.c.id.desc()).limit(limit))
    return [_sync_run(r) for r in rows]


def last_success(session: Session) -> SyncRun | None:
    """The latest run that committed a complete snapshot."""
    row = session.execute(
        select(R).where(R.c.status == SyncStatus.OK.value).order_by(R.c.id.desc()).limit(1)
    ).first()
    return _sync_run(row) if row is not None else None


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


def position_counts(session: Session) -> dict[str, int]:
    """Number of lifecycles by status."""
    rows = session.execute(select(P.c.status, func.count()).group_by(P.c.status)).all()
    return {status: count for status, count in rows}


def account_codes(session: Session) -> list[str]:
    """Every known account code."""
    return list(session.scalars(select(A.c.code).order_by(A.c.code)))


def missing_at_broker(session: Session) -> list[Lifecycle]:
    """OPEN lifecycles the broker stopped reporting (the warnings to resolve), oldest first."""
    query = (
        select(*_POSITION_COLUMNS)
        .join(A, A.c.id == P.c.account_id)
        .where(P.c.status == PositionStatus.OPEN.value, P.c.missing_since.is_not(None))
        .order_by(P.c.missing_since, P.c.id)
    )
    return [_lifecycle(row) for row in session.execute(query)]


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
    query = select(P.c.currency, P.c.realized_pnl, P.c.realized_pnl_estimated, P.c.pnl_basis)
    return totals_from_parts(
        (
            currency or "",
            realized if realized is not None else Decimal(0),
            estimated if estimated is not None else Decimal(0),
            _BASES[basis] if basis else None,
        )
        for currency, realized, estimated, basis in session.execute(query)
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
    for account, reason in _gaps(rows[0].stale_prices):
        as_of = next(
            (
                r.finished_at
                for r in rows
                if r.trigger in _FULL_TRIGGERS and account not in dict(_gaps(r.stale_prices))
            ),
            None,
        )
        out.append(StalePrices(account, reason, as_of))
    return tuple(out)
