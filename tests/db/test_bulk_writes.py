"""The fast write and read paths of large syncs keep every value exactly as the plain path would.

A sync of 20,000 positions writes through a driver-level executemany on SQLite, numbers new rows
itself, converts decimals and datetimes through shortcuts, and reads a scoped state through the
one-OPEN-row index (tests/bench measures why). These tests pin that none of that changes a value.
"""

from __future__ import annotations

import decimal
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from app.db import repository
from app.db.database import Database
from app.db.repository import writes
from app.db.repository.rows import POSITION_NAMES, P
from app.db.types import ExactDecimal, UTCDateTime
from app.domain.decimals import decimal_text
from app.domain.values import BrokerSnapshot, Contract
from tests.domain.ledger_fixture import AAPL, MSFT, SPY_C, D, at, fill, pos, snapshot

SQLITE = sqlite.dialect()


def scoped_snapshot(scope: set[tuple[str, int]], *positions: Any) -> BrokerSnapshot:
    return replace(snapshot(*positions), scope=frozenset(scope))


@given(
    st.decimals(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=False, allow_infinity=False, places=6)
    | st.integers(-(10**30), 10**30).map(Decimal)
)
def test_decimal_shortcut_is_decimal_text(value: Decimal) -> None:
    """The SQLite bind shortcut returns exactly decimal_text's canonical form."""
    bind = ExactDecimal().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert bind is not None
    assert bind(value) == decimal_text(value)


@pytest.mark.parametrize(
    "text", ["0", "-0", "0.0", "-0.00", "10", "1E+2", "1.50", "0.0000001", "-1.000", "0E-5"]
)
def test_decimal_shortcut_edge_cases(text: str) -> None:
    bind = ExactDecimal().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert bind is not None
    assert bind(Decimal(text)) == decimal_text(Decimal(text))
    with decimal.localcontext() as context:
        context.capitals = 0  # str() would then write a lowercase exponent
        assert bind(Decimal(text)) == decimal_text(Decimal(text))


def test_decimal_shortcut_still_refuses() -> None:
    bind = ExactDecimal().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert bind is not None
    for bad in (1.5, True):
        with pytest.raises(TypeError):
            bind(bad)
    for not_finite in ("NaN", "Infinity", "-Infinity", "sNaN"):
        with pytest.raises(ValueError):
            bind(Decimal(not_finite))
    assert bind(None) is None
    assert bind(7) == "7"


def test_decimal_result_shortcut() -> None:
    result = ExactDecimal().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert result is not None
    assert result("150.25") == Decimal("150.25")
    assert result(None) is None
    with pytest.raises(TypeError):
        result(1.5)  # SQL arithmetic on the text column: refused, not trusted


def test_postgresql_keeps_the_plain_processors() -> None:
    """The shortcuts are SQLite's only; PostgreSQL gets process_bind_param unchanged."""
    dialect = postgresql.dialect()
    bind = ExactDecimal().dialect_impl(dialect).bind_processor(dialect)
    assert bind is not None
    assert bind(Decimal("1.50")) == Decimal("1.5")


def test_datetime_memo_converts_each_value() -> None:
    """Remembering the last datetime never hands one value's text to another."""
    bind = UTCDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert bind is not None
    first = datetime(2026, 11, 24, 14, 41, 0, 123456, tzinfo=UTC)
    later = first + timedelta(microseconds=1)
    eastern = first.astimezone(timezone(timedelta(hours=-5)))  # the same instant elsewhere
    texts = [bind(v) for v in (first, first, later, first, eastern, later, later)]
    assert texts == [
        "2026-11-24 14:41:00.123456",
        "2026-11-24 14:41:00.123456",
        "2026-11-24 14:41:00.123457",
        "2026-11-24 14:41:00.123456",
        "2026-11-24 14:41:00.123456",
        "2026-11-24 14:41:00.123457",
        "2026-11-24 14:41:00.123457",
    ]
    with pytest.raises(ValueError):
        bind(datetime(2026, 1, 1))  # naive: refused every time, never remembered
    with pytest.raises(ValueError):
        bind(datetime(2026, 1, 1))
    assert bind(None) is None


def _stored(db: Database) -> list[tuple[Any, ...]]:
    def read(session: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in session.execute(select(P).order_by("id")).all()]

    return db.run_sync(read)


def test_driver_executemany_writes_what_core_writes(db: Database) -> None:
    """The SQLite driver path stores the same text as SQLAlchemy's own executemany."""
    when = datetime(2026, 11, 24, 14, 41, tzinfo=UTC)
    rows = [
        (1, 265598, "AAPL", "STK", "USD", "SMART", "AAPL", Decimal(1), None, None, None,
         Decimal("100.50"), Decimal("190.5"), Decimal("190.50"), Decimal("1E+2"), None,
         Decimal("-0"), Decimal("0.0000001"), Decimal(0), "OPEN", when, None, None,
         when.astimezone(timezone(timedelta(hours=2))), None, "0001.a", None, Decimal("0.10"),
         "estimated"),
        (1, 4, "SPY", "OPT", "USD", "", "SPY C", Decimal(100), "20271217", Decimal("450"), "C",
         Decimal(-3), Decimal("2.35"), Decimal("235"), None, None, None, None, Decimal("12.5"),
         "OPEN", when, None, None, when, when, None, None, None, None),
    ]  # fmt: skip

    def via_driver(session: Any) -> None:
        repository.account_ids(session, ["DU1"], create=True)
        writes._executemany(session, insert(P), POSITION_NAMES, rows)

    def via_core(session: Any) -> None:
        session.execute(
            insert(P),
            [dict(zip(POSITION_NAMES, r, strict=True)) for r in rows],
        )

    db.run_sync(via_driver)
    driver = _stored(db)
    db.run_sync(lambda s: s.execute(P.delete()))
    db.run_sync(via_core)
    core = _stored(db)
    assert [r[1:] for r in driver] == [r[1:] for r in core]

    def raw(session: Any) -> list[tuple[Any, ...]]:
        sql = "SELECT quantity, current_price, unrealized_pnl, last_synced_at FROM positions"
        return [tuple(r) for r in session.connection().exec_driver_sql(sql).all()]

    assert db.run_sync(raw)[0] == ("100.5", "100", "0", "2026-11-24 14:41:00.000000")


def test_new_rows_get_ids_in_plan_order(any_db: Database) -> None:
    """Events attach to the right lifecycle however the new rows were numbered."""
    snap = snapshot(pos(AAPL, 100, 190), pos(MSFT, -5, 400), pos(SPY_C, 2, 3))

    def sync(session: Any, snap: BrokerSnapshot) -> None:
        from app.db.store import _commit
        from app.domain.plan import ReconcileOptions
        from app.domain.values import SyncTrigger

        _commit(session, snap, ReconcileOptions(), SyncTrigger.MANUAL, at(10))

    any_db.run_sync(sync, snap)
    any_db.run_sync(sync, snapshot(pos(AAPL, 100, 190), pos(MSFT, 5, 400), minutes=11))
    lives = any_db.run_sync(repository.positions, include_closed=True)
    for life in lives:
        assert life.id is not None
        quantities = [e.quantity_after for e in any_db.run_sync(repository.events, life.id)]
        assert quantities[-1] == (life.quantity if life.is_open else 0), life
    assert sorted(life.id for life in lives if life.id is not None) == [1, 2, 3, 4]  # flip: 1 new


def _query_plans(db: Database, read: Any) -> list[str]:
    """SQLite's plan of every positions query `read(session)` runs."""
    plans: list[str] = []

    def explain(session: Any) -> None:
        connection = session.connection()

        def before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "positions" in statement:
                rows = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params).fetchall()
                plans.append(" / ".join(str(r[-1]) for r in rows))

        event.listen(connection, "before_cursor_execute", before)
        try:
            read(session)
        finally:
            event.remove(connection, "before_cursor_execute", before)

    db.run_sync(explain)
    assert plans, "no positions query seen"
    return plans


def test_selective_reads_use_the_account_con_id_indexes(db: Database) -> None:
    """A selective sync and the window's reload of its keys read through an index.

    Regression: both filtered on con_id alone, so SQLite walked every OPEN row (or the whole
    table), and one update cost more the more positions were cached.
    """
    from app.db.store import _commit
    from app.domain.plan import ReconcileOptions
    from app.domain.values import SyncTrigger

    db.run_sync(
        _commit,
        snapshot(pos(AAPL, 100, 190), pos(MSFT, 5, 400)),
        ReconcileOptions(),
        SyncTrigger.MANUAL,
        at(10),
    )
    key = ("DU111", AAPL.con_id)
    scoped = scoped_snapshot({key}, pos(AAPL, 101, 190))
    assert list(db.run_sync(repository.load_state, scoped).open_positions) == [key]
    for plan in _query_plans(db, lambda session: repository.load_state(session, scoped)):
        assert "USING INDEX uq_positions_open_account_id_con_id" in plan, plan
    assert [p.key for p in db.run_sync(repository.lifecycles_for, [key])] == [key]
    for plan in _query_plans(db, lambda session: repository.lifecycles_for(session, [key])):
        assert "account_id=? AND con_id" in plan, plan
        assert "SCAN" not in plan.split(" / ")[-1], plan


def test_scoped_state_equals_the_full_one(db: Database) -> None:
    from app.db.store import _commit
    from app.domain.plan import ReconcileOptions
    from app.domain.values import SyncTrigger

    full = snapshot(pos(AAPL, 100, 190), pos(MSFT, 5, 400), pos(SPY_C, -2, 3))
    db.run_sync(_commit, full, ReconcileOptions(), SyncTrigger.MANUAL, at(10))
    everything = db.run_sync(repository.load_state, full).open_positions
    scope = {("DU111", MSFT.con_id), ("DU111", SPY_C.con_id), ("DU999", AAPL.con_id)}
    scoped = db.run_sync(repository.load_state, scoped_snapshot(scope)).open_positions
    assert scoped == {k: v for k, v in everything.items() if k in scope}
    assert D(5) == scoped[("DU111", MSFT.con_id)].quantity


def _book(count: int, minutes: float, shift: str = "0") -> BrokerSnapshot:
    """`count` positions over two accounts, of every shape a row can have: stocks and options,
    long and short, fractional, without a price (none, 0 or IB's -1), with a market price;
    every 45th key has a fill today (folded: its observation is written as a row between runs
    of copied ones)."""
    rows = []
    fills = []
    for n in range(count):
        account = ("DU111", "DU222")[n % 2]
        option = n % 5 == 0
        contract = (
            Contract(10_000 + n, f"S{n}", "OPT", multiplier=D(100), expiry="20271217",
                     strike=D(n), right="C")
            if option
            else Contract(10_000 + n, f"S{n}", exchange="NASDAQ", local_symbol=f"S{n}")
        )  # fmt: skip
        quantity = D(n % 13 - 6) if n % 13 != 6 else D("0.25")
        market = (None, "0", "-1", f"{n}.5", f"{n + 1}.125")[n % 5]
        if market is not None and n % 5 > 2:
            market = str(D(market) + D(shift))
        rows.append(pos(contract, quantity, f"{n}.75", account=account, market=market))
        if n % 45 == 3:
            side = "BOT" if quantity > 0 else "SLD"
            fills.append(fill(contract, side, abs(quantity), f"{n}.75", account=account))
    return snapshot(*rows, fills=tuple(fills), accounts=("DU111", "DU222"), minutes=minutes)


def _ledger_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    def read(session: Any) -> dict[str, list[tuple[Any, ...]]]:
        tables = ("positions", "position_events", "observations", "executions")
        return {
            table: [
                tuple(r)
                for r in session.connection().exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
            ]
            for table in tables
        }

    return db.run_sync(read)


def test_copied_openings_write_the_rows_written_one_by_one(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync copies the openings' events and observations from their new position rows
    (INSERT … SELECT); the ledger is exactly, id for id and text for text, the one binding
    every row writes — through a first sync and the syncs after it."""
    from app.db.migrate import open_database
    from app.db.store import _commit
    from app.domain.plan import ReconcileOptions
    from app.domain.values import SyncTrigger

    syncs = [_book(300, 10), _book(300, 11, shift="0.5"), _book(260, 12, shift="1")]

    def ledger(copy_run: int, name: str) -> tuple[dict[str, list[tuple[Any, ...]]], list[str]]:
        monkeypatch.setattr(writes, "COPY_RUN", copy_run)
        copied: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith("INSERT") and "SELECT" in statement:
                copied.append(statement.split()[2])

        with open_database(tmp_path / name) as db:
            event.listen(db.engine, "before_cursor_execute", seen)
            for n, snap in enumerate(syncs):
                plan, _ = db.run_sync(
                    _commit, snap, ReconcileOptions(), SyncTrigger.MANUAL, at(9.5 + n)
                )
                assert plan.incomplete_reason is None
            return _ledger_rows(db), copied

    copies, copied = ledger(writes.COPY_RUN, "copies.sqlite")
    rows, none = ledger(10**9, "rows.sqlite")
    assert none == []
    # The openings' events come first (one run), their observations in key order between the
    # folded keys' (several runs).
    assert copied.count("position_events") == 1 and copied.count("observations") >= 2
    assert copies == rows
    assert len(rows["position_events"]) > 300 and len(rows["observations"]) > 300
    prices = {r[-6] for r in rows["observations"]}  # the observation's price column
    assert None in prices and len(prices) > 2  # no price and prices, both copied


def test_copy_runs_keep_the_order_and_skip_short_runs() -> None:
    """Runs are cut where the copied rows stop being consecutive or their constants change;
    runs shorter than COPY_RUN are written as rows, in place."""
    run = writes.COPY_RUN
    copies: list[tuple[int, Any] | None] = [None, None]
    copies += [(100 + i, "a") for i in range(run)]  # a run
    copies += [(200 + i, "a") for i in range(run - 1)]  # too short: rows
    copies += [None]
    copies += [(300 + i, "a") for i in range(run)] + [(300 + run + i, "b") for i in range(run)]
    copies += [(400 + i, "b") for i in range(run)] + [(500, "b")]  # a gap in the ids
    start = 2 + 2 * run
    assert writes._runs(copies) == [
        (0, 2, None),
        (2, 2 + run, "a"),
        (2 + run, start, None),
        (start, start + run, "a"),
        (start + run, start + 2 * run, "b"),
        (start + 2 * run, start + 3 * run, "b"),
        (start + 3 * run, start + 3 * run + 1, None),
    ]
    assert writes._runs([]) == []
    assert writes._runs([None] * 3) == [(0, 3, None)]
