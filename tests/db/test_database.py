"""Database: one thread, one connection, one transaction per call; the tables' constraints.

Tests taking `any_db` run on SQLite and on PostgreSQL; the others check the SQLite setup.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.database import Database
from app.db.errors import DatabaseIntegrityError
from app.db.migrate import open_database
from app.db.tables import AccountRow, ExecutionRow, PositionRow

NOW = datetime(2026, 11, 26, 13, 15, tzinfo=UTC)


def add_account(session: Session, code: str = "U1234567") -> int:
    account = AccountRow(code=code)
    session.add(account)
    session.flush()
    return account.id


def add_position(
    session: Session, account_id: int, con_id: int | None, status: str = "OPEN"
) -> int:
    row = PositionRow(
        account_id=account_id,
        con_id=con_id,
        symbol="AAPL",
        quantity=Decimal("10.5"),
        average_price=Decimal("150.25"),
        status=status,
        opened_at=NOW,
        closed_at=NOW if status == "CLOSED" else None,
        last_synced_at=NOW,
    )
    session.add(row)
    session.flush()
    return row.id


def count(session: Session, table: type[PositionRow] | type[AccountRow]) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(table)) or 0


def test_sqlite_connection_settings(db: Database) -> None:
    """Guards against losing WAL, foreign keys, the busy timeout or synchronous=NORMAL."""

    def pragmas(session: Session) -> dict[str, object]:
        return {
            name: session.execute(sa.text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }

    assert db.run_sync(pragmas) == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
    }


def test_one_writer_connection(db: Database) -> None:
    """Guards against a second SQLite connection (SQLite < 3.51.3 WAL bug with two writers)."""
    pool = db.engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.size() == 1 and pool._max_overflow == 0


def test_run_sync_commits_on_return_and_rolls_back_on_error(any_db: Database) -> None:
    """Guards against half-applied work: an exception in fn leaves nothing behind."""
    db = any_db
    db.run_sync(add_account, "U1")

    def add_then_fail(session: Session) -> None:
        add_account(session, "U2")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        db.run_sync(add_then_fail)
    assert db.run_sync(count, AccountRow) == 1


def test_run_from_asyncio_uses_the_database_thread(any_db: Database) -> None:
    """Guards against database work running on (and freezing) the event loop's thread."""
    db = any_db
    caller = threading.current_thread()

    def where(session: Session) -> threading.Thread:
        add_account(session)
        return threading.current_thread()

    async def scenario() -> tuple[threading.Thread, threading.Thread, int]:
        first = await db.run(where)
        second = db.run_sync(lambda session: threading.current_thread())
        return first, second, await db.run(count, AccountRow)

    loop = asyncio.new_event_loop()
    try:
        first, second, accounts = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert first is second and first is not caller
    assert first.name.startswith("position-sync-db")
    assert accounts == 1


def test_nested_run_sync_is_refused(any_db: Database) -> None:
    """Guards against a deadlock: run_sync from inside fn would wait for its own thread."""
    db = any_db

    def nested(session: Session) -> None:
        db.run_sync(count, AccountRow)

    with pytest.raises(RuntimeError, match="database thread"):
        db.run_sync(nested)


def test_close_is_idempotent_and_final(db_path: Path) -> None:
    """After close, calls fail clearly instead of hanging on a stopped thread."""
    database = open_database(db_path)
    database.close()
    database.close()
    with pytest.raises(RuntimeError, match="closed"):
        database.run_sync(count, AccountRow)
    assert not db_path.with_name(db_path.name + "-wal").exists()  # checkpointed on close


def test_second_open_row_for_same_contract_is_rejected(any_db: Database) -> None:
    """Guards against two OPEN lifecycles of one (account, con_id): the partial unique index."""
    db = any_db
    account = db.run_sync(add_account)
    db.run_sync(add_position, account, 265598)
    with pytest.raises(DatabaseIntegrityError, match=r"(?i)unique"):
        db.run_sync(add_position, account, 265598)
    assert db.run_sync(count, PositionRow) == 1


def test_closed_rows_and_other_keys_are_allowed(any_db: Database) -> None:
    """Several CLOSED lifecycles, other accounts and legacy NULL con_ids do not collide."""
    db = any_db
    first = db.run_sync(add_account, "U1")
    second = db.run_sync(add_account, "U2")
    for _ in range(3):
        db.run_sync(add_position, first, 265598, "CLOSED")
    db.run_sync(add_position, first, 265598)
    db.run_sync(add_position, second, 265598)
    db.run_sync(add_position, first, None)
    db.run_sync(add_position, first, None)
    assert db.run_sync(count, PositionRow) == 7


def test_status_outside_contract_is_rejected(any_db: Database) -> None:
    """Guards against a typo'd status ('open') that the OPEN-only index would not cover."""
    db = any_db
    account = db.run_sync(add_account)
    with pytest.raises(DatabaseIntegrityError, match=r"(?i)check"):
        db.run_sync(add_position, account, 1, "open")


def test_foreign_keys_are_enforced(any_db: Database) -> None:
    """Guards against orphan positions (foreign_keys must be ON on the app's connection)."""
    db = any_db
    with pytest.raises(DatabaseIntegrityError, match=r"(?i)foreign key"):
        db.run_sync(add_position, 999, 1)


def test_exec_id_is_unique(any_db: Database) -> None:
    """Guards against storing the same IB fill twice."""
    db = any_db
    account = db.run_sync(add_account)

    def add_fill(session: Session) -> None:
        session.add(
            ExecutionRow(
                exec_id="0000e0d5.6557a5d1.01.01",
                account_id=account,
                con_id=265598,
                symbol="AAPL",
                side="BOT",
                shares=Decimal("10"),
                price=Decimal("150.25"),
                time=NOW,
            )
        )

    db.run_sync(add_fill)
    with pytest.raises(DatabaseIntegrityError, match=r"(?i)unique"):
        db.run_sync(add_fill)


def test_realized_pnl_unknown_stays_null(any_db: Database) -> None:
    """Guards against 'unknown' realized P&L turning into 0.0."""
    db = any_db
    account = db.run_sync(add_account)

    def add_and_read(session: Session) -> tuple[Decimal | None, Decimal | None]:
        session.add(
            ExecutionRow(
                exec_id="x.1",
                account_id=account,
                con_id=1,
                symbol="X",
                side="SLD",
                shares=Decimal("1"),
                price=Decimal("1"),
                time=NOW,
            )
        )
        session.flush()
        session.expire_all()  # read what the database stored, not the object in memory
        row = session.scalars(sa.select(ExecutionRow)).one()
        return row.realized_pnl, row.commission

    assert db.run_sync(add_and_read) == (None, None)


def test_in_memory_ledger_for_fast_tests() -> None:
    """`sqlite://` gives a migrated, private in-memory ledger with foreign keys on."""
    database = open_database("sqlite://")
    try:
        account = database.run_sync(add_account)
        database.run_sync(add_position, account, 1)
        assert database.run_sync(count, PositionRow) == 1
        assert database.path is None
        with pytest.raises(DatabaseIntegrityError):
            database.run_sync(add_position, 999, 2)
    finally:
        database.close()
