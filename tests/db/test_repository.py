"""The repository on a real migrated ledger (SQLite and PostgreSQL): plans commit whole, read
back exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.db import repository
from app.db.database import Database
from app.db.migrate import open_database
from app.domain.manual import mark_closed
from app.domain.plan import ReconcileOptions, SyncPlan
from app.domain.reconcile import reconcile
from app.domain.records import RunOutcome
from app.domain.values import (
    BrokerSnapshot,
    CloseReason,
    EventKind,
    PositionStatus,
    PriceSource,
    SyncStatus,
    SyncTrigger,
)
from tests.domain.ledger_fixture import AAPL, ES, MSFT, SPY_C, D, at, fill, pos, snapshot


@pytest.fixture
def db(ledger_url):
    database = open_database(ledger_url)
    yield database
    database.close()


def commit(db: Database, snap: BrokerSnapshot, options: ReconcileOptions | None = None) -> SyncPlan:
    def work(session):
        state = repository.load_state(session, snap)
        plan = reconcile(state, snap, options)
        status = SyncStatus.OK if plan.incomplete_reason is None else SyncStatus.FAILED
        outcome = RunOutcome(
            SyncTrigger.MANUAL, snap.taken_at, snap.taken_at, status, plan.incomplete_reason
        )
        repository.apply_plan(session, plan, outcome)
        return plan

    return db.run_sync(work)


def test_round_trip_values_are_exact(db):
    snap = snapshot(
        pos(AAPL, "0.3", "150.123456789", market="151.5"),
        pos(ES, "-2", "4500.25", market="4490"),
        pos(SPY_C, "3", "5.2"),
        pos(MSFT, "10", "400", account="DU222"),
        accounts=("DU111", "DU222"),
    )
    commit(db, snap)
    rows = {p.key: p for p in db.run_sync(repository.positions)}
    aapl = rows[("DU111", AAPL.con_id)]
    assert aapl.quantity == D("0.3") and aapl.average_price == D("150.123456789")
    assert aapl.current_price == D("151.5") and aapl.contract == AAPL
    es = rows[("DU111", ES.con_id)]
    assert es.quantity == -2 and es.contract.multiplier == 50 and es.average_cost == D("225012.50")
    assert rows[("DU111", SPY_C.con_id)].contract == SPY_C
    assert rows[("DU222", MSFT.con_id)].quantity == 10
    assert all(p.opened_at.tzinfo is UTC for p in rows.values())
    assert db.run_sync(repository.account_codes) == ["DU111", "DU222"]


def test_lifecycles_read_share_their_repeated_strings(db):
    """Lifecycles read back share one string object per account code, currency, exchange and
    security type (and a local symbol equal to its symbol), whatever the backend returns.

    Guards the window's memory: each of 20,000 rows read carried its own copy of each."""
    snap = snapshot(
        pos(AAPL, "10", "150", market="151.5"),
        pos(MSFT, "10", "400", market="401"),
        pos(ES, "-2", "4500.25"),
        accounts=("DU111",),
    )
    commit(db, snap)
    aapl, es, msft = sorted(db.run_sync(repository.positions), key=lambda p: p.contract.symbol)
    assert aapl.account is msft.account is es.account
    assert aapl.contract.currency is msft.contract.currency
    assert aapl.contract.exchange is msft.contract.exchange
    assert aapl.contract.sec_type is msft.contract.sec_type
    again = {p.key: p for p in db.run_sync(repository.positions)}[aapl.key]
    assert again.contract.symbol is aapl.contract.symbol and again == aapl
    assert aapl.contract == AAPL and msft.contract == MSFT and es.contract == ES


def test_trading_day_events_fills_and_idempotence(db):
    commit(db, snapshot(pos(AAPL, "100", "150")))
    sell = fill(AAPL, "SLD", "40", "160", commission="1.00", minutes=10, broker_pnl="399")
    snap = snapshot(pos(AAPL, "60", "150", market="160"), fills=(sell,), minutes=11)
    commit(db, snap)
    (row,) = db.run_sync(repository.positions)
    assert row.quantity == 60 and row.realized_pnl == D("399.00")
    history = db.run_sync(repository.events, row.id)
    assert [e.kind for e in history] == [EventKind.OPENED, EventKind.REDUCED]
    reduced = history[1]
    assert reduced.realized_pnl == D("399.00") and reduced.broker_realized_pnl == D("399")
    assert reduced.exec_ids == (sell.exec_id,) and reduced.price_source is PriceSource.FILLS
    fills = db.run_sync(repository.fills_for, row.key)
    assert [f.exec_id for f in fills] == [sell.exec_id] and fills[0].commission == D("1.00")

    # Rule 6: the same snapshot again adds no event, no fill, changes no quantity or P&L.
    again = commit(db, snap)
    assert again.changes == () and again.new_fills == ()
    assert len(db.run_sync(repository.events, row.id)) == 2
    (same,) = db.run_sync(repository.positions)
    assert (same.quantity, same.realized_pnl, same.status) == (60, D("399.00"), row.status)
    runs = db.run_sync(repository.sync_runs)
    assert [r.status for r in runs] == [SyncStatus.OK] * 3


def test_flip_keeps_one_open_row_per_key(db):
    commit(db, snapshot(pos(AAPL, "100", "150")))
    f = fill(AAPL, "SLD", "150", "160", minutes=3)
    commit(db, snapshot(pos(AAPL, "-50", "160"), fills=(f,), minutes=4))
    every = db.run_sync(repository.positions, include_closed=True)
    assert sorted((p.status.value, p.quantity) for p in every) == [("CLOSED", 0), ("OPEN", -50)]
    closed = next(p for p in every if p.status is PositionStatus.CLOSED)
    assert closed.close_reason is CloseReason.FLIP and closed.realized_pnl == 1000


def test_incomplete_snapshot_records_failed_run_only(db):
    commit(db, snapshot(pos(AAPL, "100", "150")))
    before = db.run_sync(repository.positions, include_closed=True)
    f = fill(AAPL, "SLD", "100", "1", minutes=3)
    plan = commit(db, snapshot(fills=(f,), minutes=4, incomplete="connection dropped"))
    assert plan.is_empty
    assert db.run_sync(repository.positions, include_closed=True) == before
    assert db.run_sync(repository.fills_for, ("DU111", AAPL.con_id)) == []
    last = db.run_sync(repository.sync_runs)[0]
    assert last.status is SyncStatus.FAILED and last.error == "connection dropped"


def test_missing_status_and_mark_closed(db):
    commit(db, snapshot(pos(AAPL, "100", "150", market="155"), pos(MSFT, "1", "400")))
    commit(db, snapshot(pos(MSFT, "1", "400"), minutes=10))
    commit(db, snapshot(pos(MSFT, "1", "400"), minutes=20))
    status = db.run_sync(repository.ledger_status, "x", "0005")
    (missing,) = status.missing_at_broker
    assert missing.contract == AAPL and missing.missing_since == at(10)
    assert status.open_positions == 2 and status.last_success is not None

    change = mark_closed(missing, D("155"), datetime(2026, 11, 25, tzinfo=UTC), "closed at GS")
    db.run_sync(repository.apply_manual_change, change)
    row = db.run_sync(repository.position, missing.id)
    assert row.status is PositionStatus.CLOSED and row.close_reason is CloseReason.MANUAL
    assert row.realized_pnl == D("500") and row.missing_since is None
    assert db.run_sync(repository.events, missing.id)[-1].kind is EventKind.MARKED_CLOSED
    assert db.run_sync(repository.ledger_status, "x", "0005").missing_at_broker == ()
    # A second Mark closed on a stale copy is refused, not applied twice.
    with pytest.raises(ValueError, match="closed meanwhile"):
        db.run_sync(repository.apply_manual_change, change)


def test_corrections_replace_stored_fill(db):
    f = fill(AAPL, "BOT", "10", "150", exec_id="0000e0d5.0bb.01.01", minutes=1)
    commit(db, snapshot(pos(AAPL, "10", "150"), fills=(f,), minutes=2))
    fixed = fill(AAPL, "BOT", "10", "150.5", exec_id="0000e0d5.0bb.01.02", minutes=1)
    commit(db, snapshot(pos(AAPL, "10", "150.5"), fills=(f, fixed), minutes=3))
    fills = db.run_sync(repository.fills_for, ("DU111", AAPL.con_id))
    assert [(x.exec_id, x.price) for x in fills] == [("0000e0d5.0bb.01.02", Decimal("150.5"))]
