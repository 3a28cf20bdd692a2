"""Readers apart from writers: `Database.read` runs in a snapshot that takes no lock.

Before, every transaction began IMMEDIATE, so a plain read by the window, `status` or the API
waited behind another process's write (and failed after the busy timeout). These tests hold a
real 20,000-position sync transaction open in another process — the app's own write path, not
committed yet — and read meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import engine as engine_module
from app.db import repository
from app.db.database import Database
from app.db.errors import DatabaseError, DatabaseLockedError
from app.db.migrate import open_database
from app.db.tables import AccountRow
from tests.db.test_postgresql import commit
from tests.domain.ledger_fixture import AAPL, pos, snapshot

ROOT = Path(__file__).resolve().parents[2]
WRITE_SIZE = 20_000

# Opens the ledger, runs one real sync transaction of WRITE_SIZE new positions through
# app.db.store (the window's and `sync`'s write path), says "written" while still inside the
# transaction, and commits only when a line arrives on stdin.
WRITER = """
import sys
from app.db.migrate import open_database
from app.db.store import _commit
from app.domain.plan import ReconcileOptions
from app.domain.values import Contract, SyncTrigger
from tests.domain.ledger_fixture import at, pos, snapshot

db = open_database(sys.argv[1])
contracts = [Contract(5_000_000 + i, f"S{i}") for i in range(int(sys.argv[2]))]
snap = snapshot(*(pos(c, "10", "100") for c in contracts), minutes=30)

def hold(session):
    _commit(session, snap, ReconcileOptions(), SyncTrigger.MANUAL, at(29))
    print("written", flush=True)
    sys.stdin.readline()

db.run_sync(hold)
print("committed", flush=True)
db.close()
"""


@pytest.fixture
def writer(ledger_url: str) -> Iterator[Any]:
    """Start the writing process for `ledger_url`; it is ended at teardown whatever happened."""
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, ledger_url, str(WRITE_SIZE)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def _expect(process: subprocess.Popen[str], line: str, timeout: float = 180) -> None:
    """Wait for `line` on the writer's stdout (a reader thread: readline has no timeout)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(process.stdout.readline().strip()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    assert got == [line], f"the writer said {got!r} (exit code {process.poll()})"


def _symbols(db: Database) -> list[str]:
    return [p.contract.symbol for p in db.read_sync(repository.positions)]


def test_a_read_does_not_wait_for_another_process_writing_20000_positions(
    ledger_url: str, writer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards against readers taking the write lock (BEGIN IMMEDIATE): the window, `status` and
    the API then waited behind a sync in another process and failed after the busy timeout."""
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 1.0)
    db = open_database(ledger_url)
    try:
        commit(db, snapshot(pos(AAPL, "100", "150"), minutes=5))
        process = writer()
        _expect(process, "written")

        if db.is_sqlite:
            # The other process really holds the write lock: a writer here waits and gives up.
            with pytest.raises(DatabaseLockedError):
                db.run_sync(lambda session: session.execute(sa.text("DELETE FROM sync_runs")))
        started = time.monotonic()
        before = _symbols(db)
        stats = db.read_sync(repository.sync_stats)
        elapsed = time.monotonic() - started

        assert before == ["AAPL"], "the read saw the other process's uncommitted rows"
        assert stats.runs == 1
        assert elapsed < 0.5, f"the read took {elapsed:.2f} s while the other process wrote"

        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.flush()
        _expect(process, "committed")
        after = _symbols(db)
        assert len(after) == WRITE_SIZE + 1, "a read after the commit did not see it"
    finally:
        db.close()


def _add_account(code: str) -> Any:
    def add(session: Session) -> None:
        session.add(AccountRow(code=code))

    return add


def _count_accounts(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(AccountRow)) or 0


def test_a_reader_sees_one_snapshot_across_its_statements(ledger_url: str) -> None:
    """Guards against a reader mixing two states (READ COMMITTED on PostgreSQL would): a write
    committed by another connection between two of its statements is not seen until the next
    read."""
    reader, other = open_database(ledger_url), open_database(ledger_url)
    try:
        reader.run_sync(_add_account("DU1"))

        def two_counts(session: Session) -> tuple[int, int]:
            first = _count_accounts(session)
            done = threading.Event()

            def write() -> None:
                other.run_sync(_add_account("DU2"))
                done.set()

            thread = threading.Thread(target=write)
            thread.start()
            thread.join(30)
            assert done.is_set(), "the other connection could not write while we read"
            return first, _count_accounts(session)

        assert reader.read_sync(two_counts) == (1, 1)
        assert reader.read_sync(_count_accounts) == 2
    finally:
        reader.close()
        other.close()


def test_a_write_inside_a_read_is_refused_and_writing_still_works_after(
    ledger_url: str,
) -> None:
    """Guards against a reader writing behind the write door (and against the read's guard —
    query_only on SQLite, READ ONLY on PostgreSQL — staying on for the next writer)."""
    db = open_database(ledger_url)
    try:
        with pytest.raises(DatabaseError):
            db.read_sync(_add_account("DU1"))
        assert db.read_sync(_count_accounts) == 0
        db.run_sync(_add_account("DU2"))
        assert db.read_sync(_count_accounts) == 1
    finally:
        db.close()
