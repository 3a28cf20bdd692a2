"""Row mapping: the only code that knows the ledger's column order.

Every column list a domain value is read from (`…_COLUMNS`, the `…_from(row)` conversions) or
written to (`…_NAMES`, `…_values` / `…_rows`) lives here, beside its twin: a column added to
a select and forgotten in its conversion is then one screen apart, not three modules.
Elsewhere columns are named only where their order cannot matter: WHERE and ORDER BY clauses,
one-column reads (an id, a status), rows read by column name (`sync_runs`), and two-column
key → value lookups unpacked on the same line (code → id, status → count).

Conversions are positional, with enums looked up in dicts: a sync converts 20,000 rows each
way, and per-row attribute access or Enum calls would cost more than SQLite's own work. The
write helpers (`fill_rows`, `event_rows`, …) build a whole statement's rows in one
comprehension: no call per row on the write path.

The table aliases (`P`, `A`, …) and `chunks` live here too: this is the one module the queries,
the writes and the round trip share, and they import nothing from each other.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Row, Table

from app.db.tables import (
    AccountRow,
    ExecutionRow,
    ObservationRow,
    PositionEventRow,
    PositionRow,
    SyncRunRow,
)
from app.domain.history import Observation, ObservationKind
from app.domain.money import LifecycleParts
from app.domain.plan import LifecycleChange, MarketUpdate, SyncPlan
from app.domain.records import RunOutcome, StoredEvent, SyncRun
from app.domain.series import RealizedAmount
from app.domain.values import (
    ONE,
    CloseReason,
    Contract,
    EventKind,
    Fill,
    Lifecycle,
    PnlBasis,
    PositionStatus,
    PriceSource,
    Side,
    SyncStatus,
    SyncTrigger,
)

_T = TypeVar("_T")

_intern = sys.intern

P = cast(Table, PositionRow.__table__)
A = cast(Table, AccountRow.__table__)
E = cast(Table, PositionEventRow.__table__)
X = cast(Table, ExecutionRow.__table__)
R = cast(Table, SyncRunRow.__table__)
OB = cast(Table, ObservationRow.__table__)

CHUNK = 500  # bound parameters per statement stay far below SQLite's limit


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """`items` in slices of `size`: the keys one IN list or one DELETE binds."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Enum lookups by value: calling the Enum class per row costs more than the rest of the row.
_STATUSES = {s.value: s for s in PositionStatus}
_CLOSE_REASONS = {r.value: r for r in CloseReason}
_BASES = {b.value: b for b in PnlBasis}
_SIDES = {s.value: s for s in Side}
_EVENT_KINDS = {k.value: k for k in EventKind}
_PRICE_SOURCES = {s.value: s for s in PriceSource}
_OBSERVATION_KINDS = {k.value: k for k in ObservationKind}


# ---------------------------------------------------------------------------- positions
POSITION_COLUMNS = (
    P.c.id, A.c.code, P.c.con_id, P.c.symbol, P.c.sec_type, P.c.currency, P.c.exchange,
    P.c.local_symbol, P.c.multiplier, P.c.expiry, P.c.strike, P.c.right, P.c.quantity,
    P.c.average_price, P.c.status, P.c.opened_at, P.c.average_cost, P.c.current_price,
    P.c.market_value, P.c.unrealized_pnl, P.c.unrealized_pnl_pct, P.c.realized_pnl,
    P.c.closed_at, P.c.close_reason, P.c.last_synced_at, P.c.missing_since,
    P.c.entry_trade_id, P.c.exit_trade_id, P.c.realized_pnl_estimated, P.c.pnl_basis,
)  # fmt: skip
"""What a lifecycle is read from (positions joined to accounts), in `lifecycle_from` order."""


def lifecycle_from(row: Sequence[Any]) -> Lifecycle:
    """One row of `POSITION_COLUMNS`."""
    (pid, code, con_id, symbol, sec_type, currency, exchange, local_symbol, multiplier, expiry,
     strike, right, quantity, average_price, status, opened_at, average_cost, current_price,
     market_value, unrealized, unrealized_pct, realized, closed_at, close_reason, last_synced_at,
     missing_since, entry, exit_, estimated, basis) = row  # fmt: skip
    # Interned: 20,000 lifecycles hold a few dozen account codes, currencies, exchanges and
    # security types, and each copy of a lifecycle (the window's, a sync's) the same symbols;
    # read from the database each is a new string per row (~6 MB per copy of 20,000).
    contract = Contract(
        con_id=con_id or 0,
        symbol=_intern(symbol),
        sec_type=_intern(sec_type) if sec_type else "STK",
        currency=_intern(currency) if currency else "",
        exchange=_intern(exchange) if exchange else "",
        local_symbol=_intern(local_symbol) if local_symbol else "",
        multiplier=multiplier if multiplier is not None else Decimal(1),
        expiry=_intern(expiry) if expiry else "",
        strike=strike,
        right=_intern(right) if right else "",
    )
    return Lifecycle(
        id=pid,
        account=_intern(code),
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


POSITION_NAMES = (
    "account_id", "con_id", "symbol", "sec_type", "currency", "exchange", "local_symbol",
    "multiplier", "expiry", "strike", "right", "quantity", "average_price", "average_cost",
    "current_price", "market_value", "unrealized_pnl", "unrealized_pnl_pct", "realized_pnl",
    "status", "opened_at", "closed_at", "close_reason", "last_synced_at", "missing_since",
    "entry_trade_id", "exit_trade_id", "realized_pnl_estimated", "pnl_basis",
)  # fmt: skip
"""The `positions` columns a lifecycle is written to (all but `id`), in `position_values` order."""


def position_values(life: Lifecycle, account_id: int) -> tuple[Any, ...]:
    """A lifecycle's `positions` columns (but `id`), in POSITION_NAMES order."""
    # `_value_`, not `.value`: an enum's `value` is a Python-level property (~0.2 µs), and the
    # rows of a 20,000-position sync read some 60,000 of them (here, event and observation rows).
    c = life.contract
    return (
        account_id, c.con_id, c.symbol, c.sec_type, c.currency, c.exchange, c.local_symbol,
        c.multiplier, c.expiry or None, c.strike, c.right or None, life.quantity,
        life.average_price, life.average_cost, life.current_price, life.market_value,
        life.unrealized_pnl, life.unrealized_pnl_pct, life.realized_pnl, life.status._value_,
        life.opened_at, life.closed_at, life.close_reason._value_ if life.close_reason else None,
        life.last_synced_at or life.opened_at, life.missing_since, life.entry_trade_id,
        life.exit_trade_id, life.realized_pnl_estimated,
        life.pnl_basis._value_ if life.pnl_basis else None,
    )  # fmt: skip


def lifecycle_from_values(position_id: int, account: str, values: Sequence[Any]) -> Lifecycle:
    """What `lifecycle_from` reads of row `position_id` of `account` holding `values` (in
    POSITION_NAMES order, as the database gives them back)."""
    by_name = dict(zip(POSITION_NAMES, values, strict=True))
    return lifecycle_from(
        [position_id, account, *(by_name[column.name] for column in POSITION_COLUMNS[2:])]
    )


MARKET_NAMES = (
    "row_id", "average_price", "average_cost", "current_price", "market_value", "unrealized_pnl",
    "unrealized_pnl_pct",
)  # fmt: skip
"""A market update's columns (`row_id` picks the row), in `market_rows` order."""


def market_rows(updates: Iterable[MarketUpdate]) -> list[tuple[Any, ...]]:
    """The rows of a market-update executemany (MARKET_NAMES order), in the order given."""
    return [
        (
            u.position_id,
            u.average_price,
            u.average_cost,
            u.current_price,
            u.market_value,
            u.unrealized_pnl,
            u.unrealized_pnl_pct,
        )
        for u in updates
    ]


# ---------------------------------------------------------------------------- events
EVENT_COLUMNS = (
    E.c.id, E.c.position_id, E.c.sync_run_id, E.c.kind, E.c.occurred_at, E.c.quantity_before,
    E.c.quantity_after, E.c.price, E.c.price_source, E.c.realized_pnl, E.c.broker_realized_pnl,
    E.c.exec_ids, E.c.note, E.c.pnl_basis, E.c.realized_pnl_fifo, E.c.pnl_basis_fifo,
)  # fmt: skip
"""What a stored event is read from, in `event_from` order."""


def event_from(row: Sequence[Any]) -> StoredEvent:
    """One row of `EVENT_COLUMNS`. Positional, with the enums looked up in dicts: a re-fold
    reads every event of a key (hundreds for a day-trader's stock) inside the sync."""
    (id_, position_id, run_id, kind, at, before, after, price, source, realized, broker, exec_ids,
     note, basis, fifo, fifo_basis) = row  # fmt: skip
    return StoredEvent(
        id_, position_id, run_id, _EVENT_KINDS[kind], at, before, after, price,
        _PRICE_SOURCES[source] if source else None, realized, broker,
        tuple(exec_ids.split(",")) if exec_ids else (), note or "",
        _BASES[basis] if basis else None, fifo, _BASES[fifo_basis] if fifo_basis else None,
    )  # fmt: skip


EVENT_NAMES = (
    "position_id", "sync_run_id", "kind", "occurred_at", "quantity_before", "quantity_after",
    "price", "price_source", "realized_pnl", "broker_realized_pnl", "exec_ids", "note",
    "pnl_basis", "realized_pnl_fifo", "pnl_basis_fifo",
)  # fmt: skip
_NO_FIFO = len(EVENT_NAMES) - 2
"""Without the two FIFO columns: a batch in which no event realizes anything (a first sync's
20,000 openings) binds 40,000 NULLs fewer."""


def event_rows(
    position_ids: Sequence[int | None], changes: Sequence[LifecycleChange], run_id: int | None
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The column names and rows inserting the events of `changes`, whose lifecycles are rows
    `position_ids` (one each, in order); the FIFO columns left out when every one is NULL."""
    rows = [
        (
            pid,
            run_id,
            e.kind._value_,
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
        for pid, change in zip(position_ids, changes, strict=True)
        for e in change.events
    ]
    if any(row[-1] is not None or row[-2] is not None for row in rows):
        return EVENT_NAMES, rows
    return EVENT_NAMES[:_NO_FIFO], [r[:_NO_FIFO] for r in rows]


# ---------------------------------------------------------------------------- copied rows
# A first sync opens 20,000 lifecycles, each with one opening event and one `reported`
# observation that repeat values of the lifecycle's own new row. Such rows are copied from
# `positions` by SQLite in one INSERT … SELECT (app.db.repository.writes) instead of being
# converted and bound again row by row; every other column is a constant of the statement.
COPIED_EVENT_COLUMNS = (
    ("position_id", P.c.id), ("occurred_at", P.c.opened_at), ("quantity_after", P.c.quantity),
    ("price", P.c.average_price),
)  # fmt: skip
"""An opening event's columns read from its lifecycle's row (event column, positions column)."""

COPIED_OBSERVATION_COLUMNS = (
    ("account_id", P.c.account_id), ("con_id", P.c.con_id), ("observed_at", P.c.opened_at),
    ("quantity", P.c.quantity), ("average_cost", P.c.average_cost), ("price", P.c.current_price),
)  # fmt: skip
"""A `reported` observation's columns read from its key's new lifecycle row."""


def copied_opening(change: LifecycleChange) -> tuple[Any, ...] | None:
    """The constant columns (kind, quantity_before, note, as event_rows writes them) of
    `change`'s only event when the rest of it is COPIED_EVENT_COLUMNS of its new row: an opening
    at the lifecycle's opening time, quantity and average price that realizes nothing and names
    no fills. None otherwise (the event is written as a row)."""
    events = change.events
    if change.before is not None or len(events) != 1:
        return None
    e, life = events[0], change.after
    if (
        e.occurred_at == life.opened_at
        and e.quantity_after == life.quantity
        and e.price == life.average_price
        and e.price is not None
        and e.price_source is None
        and e.realized_pnl is None
        and e.broker_realized_pnl is None
        and not e.exec_ids
        and e.pnl_basis is None
        and e.realized_pnl_fifo is None
        and e.pnl_basis_fifo is None
    ):
        return (e.kind._value_, e.quantity_before, e.note or None)
    return None


def observation_copies(o: Observation, life: Lifecycle) -> bool:
    """Whether `o` is exactly COPIED_OBSERVATION_COLUMNS of `life`'s row, kind `reported`, with
    no note and no pairing (observation_rows would write the same values)."""
    return (
        o.kind is ObservationKind.REPORTED
        and o.at == life.opened_at
        and o.con_id == life.contract.con_id
        and o.account == life.account
        and o.quantity == life.quantity
        and o.average_cost == life.average_cost
        and o.price == life.current_price
        and not o.note
        and o.id is None
        and o.paired_con_id is None
        and o.paired_quantity is None
        and o.paired_average_cost is None
    )


# ---------------------------------------------------------------------------- fills
FILL_COLUMNS = (
    X.c.exec_id, A.c.code, X.c.con_id, X.c.symbol, X.c.side, X.c.shares, X.c.price, X.c.time,
    X.c.perm_id, X.c.order_ref, X.c.commission, X.c.commission_currency, X.c.realized_pnl,
    X.c.seen_at, X.c.price_magnifier, X.c.fifo_pnl_realized,
)  # fmt: skip
"""What a fill is read from (executions joined to accounts), in `fill_from` order."""


def fill_from(row: Sequence[Any]) -> Fill:
    """One row of `FILL_COLUMNS`."""
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


FILL_NAMES = (
    "exec_id", "account_id", "con_id", "symbol", "side", "shares", "price", "time", "perm_id",
    "order_ref", "commission", "commission_currency", "realized_pnl", "seen_at",
    "price_magnifier", "fifo_pnl_realized",
)  # fmt: skip
"""The `executions` columns, in `fill_rows` order."""


def fill_rows(fills: Iterable[Fill], account_ids: dict[str, int]) -> list[tuple[Any, ...]]:
    """The rows of an `executions` executemany (FILL_NAMES order); `account_ids` by code."""
    rows = []
    for fill in fills:
        values = fill_values(fill, account_ids[fill.account])
        rows.append(tuple(values[name] for name in FILL_NAMES))
    return rows


# ---------------------------------------------------------------------------- observations
OBSERVATION_COLUMNS = (
    OB.c.id, A.c.code, OB.c.con_id, OB.c.kind, OB.c.observed_at, OB.c.quantity,
    OB.c.average_cost, OB.c.price, OB.c.note, OB.c.paired_con_id, OB.c.paired_quantity,
    OB.c.paired_average_cost,
)  # fmt: skip
"""What an observation is read from (observations joined to accounts), in `observation_from`
order."""


def observation_from(row: Sequence[Any]) -> Observation:
    """One row of `OBSERVATION_COLUMNS`."""
    oid, code, con_id, kind, at, quantity, cost, price, note = row[:9]
    return Observation(
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


OBSERVATION_NAMES = (
    "account_id", "con_id", "kind", "observed_at", "quantity", "average_cost", "price", "note",
    "sync_run_id", "paired_con_id", "paired_quantity", "paired_average_cost",
)  # fmt: skip
"""The `observations` columns, in `observation_rows` order."""


def observation_rows(
    observations: Iterable[Observation], account_ids: dict[str, int], run_id: int | None
) -> list[tuple[Any, ...]]:
    """The rows of an `observations` executemany (OBSERVATION_NAMES order)."""
    return [
        (account_ids[o.account], o.con_id, o.kind._value_, o.at, o.quantity,
         o.average_cost, o.price, o.note or None, run_id, o.paired_con_id, o.paired_quantity,
         o.paired_average_cost)
        for o in observations
    ]  # fmt: skip


# ---------------------------------------------------------------------------- sync runs
def run_values(plan: SyncPlan, outcome: RunOutcome) -> dict[str, Any]:
    """The `sync_runs` row of a run that wrote `plan` (an insert's parameters)."""
    counts = plan.counts
    return {
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
    }


def sync_run_from(row: Row[Any]) -> SyncRun:
    """One row of `select(R)` (by column name)."""
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
        stale_prices=gaps(row.stale_prices),
        fills_unavailable=row.fills_unavailable,
    )


def _gaps_text(stale: tuple[tuple[str, str], ...]) -> str | None:
    """`sync_runs.stale_prices`: a JSON object account -> why, or NULL for none."""
    return json.dumps(dict(stale), sort_keys=True) if stale else None


def gaps(text: str | None) -> tuple[tuple[str, str], ...]:
    """The (account, why) pairs a `sync_runs.stale_prices` value holds, by account."""
    if not text:
        return ()
    try:
        stored = json.loads(text)
    except ValueError:
        return (("?", text),)  # written by another tool: shown as it is
    if not isinstance(stored, dict):
        return (("?", text),)
    return tuple(sorted((str(k), str(v)) for k, v in stored.items()))


# ---------------------------------------------------------------------------- realized P&L
def realized_columns(fifo: bool) -> tuple[Any, ...]:
    """What a realized amount is read from (events joined to their positions and accounts):
    the FIFO amount and its own basis when `fifo`, else the average-cost ones."""
    amount = E.c.realized_pnl_fifo if fifo else E.c.realized_pnl
    basis = E.c.pnl_basis_fifo if fifo else E.c.pnl_basis
    return (A.c.code, P.c.currency, E.c.occurred_at, amount, basis, E.c.position_id)


def realized_amounts_from(rows: Iterable[Sequence[Any]]) -> list[RealizedAmount]:
    """Rows of `realized_columns`."""
    return [
        RealizedAmount(code, currency or "", at, value, _BASES[kind] if kind else None, pid)
        for code, currency, at, value, kind, pid in rows
    ]


TOTAL_COLUMNS = (P.c.currency, P.c.realized_pnl, P.c.realized_pnl_estimated, P.c.pnl_basis)
"""A lifecycle's realized figures, in `total_parts` order."""


def total_parts(rows: Iterable[Sequence[Any]]) -> Iterator[LifecycleParts]:
    """Rows of `TOTAL_COLUMNS` as app.domain.money.totals_from_parts takes them."""
    return (
        (
            currency or "",
            realized if realized is not None else Decimal(0),
            estimated if estimated is not None else Decimal(0),
            _BASES[basis] if basis else None,
        )
        for currency, realized, estimated, basis in rows
    )
