"""The sync lock of a SQLite ledger (app.db.sync_lock), between real processes on real files.

The lock decides which process may write a ledger (issue 18): a second process must not get it
while the first lives, must get it once the first dies however it dies, and a lock file left by
a dead process must not block anybody.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.db.data_version import DataVersion
from app.db.sync_lock import SyncHolder, SyncLock, lock_path, read_holder

REPO = Path(__file__).resolve().parents[2]

HOLD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from app.db.sync_lock import SyncHolder, SyncLock
lock = SyncLock.try_acquire(Path(sys.argv[1]))
if lock is None:
    print("refused", flush=True)
    sys.exit(3)
lock.publish(SyncHolder(__import__("os").getpid(), "holder test", datetime.now(UTC), 4242, "t0k"))
print("held", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
print("released", flush=True)
"""


class Holder:
    """Another process holding (or trying to hold) the sync lock of `database`."""

    def __init__(self, database: Path, seconds: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(database), str(seconds)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.first = self.proc.stdout.readline().strip()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(database: Path, seconds: float = 60.0) -> Holder:
        holder = Holder(database, seconds)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        holder.close()


def acquire_within(database: Path, seconds: float) -> SyncLock | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lock = SyncLock.try_acquire(database)
        if lock is not None:
            return lock
        time.sleep(0.02)
    return None


def test_a_second_process_cannot_take_the_lock_and_reads_who_holds_it(tmp_path, holders):
    """Guards: two processes both syncing one SQLite file (the WAL-reset corruption)."""
    database = tmp_path / "ledger.sqlite"
    holder = holders(database)
    assert holder.first == "held"
    assert SyncLock.try_acquire(database) is None
    other = holders(database)  # a third process is refused too
    assert other.first == "refused" and other.proc.wait(10) == 3
    found = read_holder(database)
    assert found is not None
    assert (found.pid, found.command, found.port, found.token) == (
        holder.proc.pid,
        "holder test",
        4242,
        "t0k",
    )
    assert found.describe() == f"pid {holder.proc.pid} (holder test)"
    # The record carries the endpoint's token: readable by the user only, like the database.
    assert stat.S_IMODE(lock_path(database).stat().st_mode) == 0o600
    assert json.loads(lock_path(database).read_text())["pid"] == holder.proc.pid


def test_killing_the_holder_hands_the_lock_to_the_next_process(tmp_path, holders):
    """Guards: a viewer never taking over after the syncer was killed (kill -9 runs no code
    of the process: only the OS can drop the lock)."""
    database = tmp_path / "ledger.sqlite"
    holder = holders(database)
    assert holder.first == "held"
    assert SyncLock.try_acquire(database) is None
    holder.kill()
    lock = acquire_within(database, 5.0)
    assert lock is not None, "the lock of a killed process was not released"
    try:
        # The dead holder's record is still there until the new holder replaces it.
        stale = read_holder(database)
        assert stale is not None and stale.pid == holder.proc.pid
        lock.publish(SyncHolder(os.getpid(), "new holder", datetime.now(UTC)))
        now = read_holder(database)
        assert now is not None and (now.pid, now.command) == (os.getpid(), "new holder")
        assert now.port is None and now.token is None
        # ... and while this process holds it, another one is refused.
        assert holders(database).first == "refused"
    finally:
        lock.release()


def test_a_lock_file_left_by_a_dead_process_does_not_block(tmp_path, holders):
    """Guards: a crash leaving the app unable to sync until someone deletes a file."""
    database = tmp_path / "ledger.sqlite"
    dead = SyncHolder(2**22 + 12345, "position-sync window", datetime(2026, 1, 2, tzinfo=UTC))
    lock_path(database).write_text(dead.to_json())
    assert read_holder(database) == dead  # says so, but nobody holds the lock
    holder = holders(database)
    assert holder.first == "held"
    found = read_holder(database)
    assert found is not None and found.pid == holder.proc.pid and found.command == "holder test"


def test_a_clean_release_empties_the_record_and_frees_the_lock(tmp_path, holders):
    database = tmp_path / "ledger.sqlite"
    holder = holders(database, seconds=0.3)
    assert holder.first == "held"
    assert holder.proc.wait(10) == 0
    assert lock_path(database).exists()  # never deleted (see app.db.sync_lock)
    assert read_holder(database) is None
    lock = SyncLock.try_acquire(database)
    assert lock is not None
    lock.release()


def test_one_process_shares_its_lock_and_keeps_it_until_the_last_release(tmp_path, holders):
    """Guards: the window turning into a viewer of itself when it applies new connection
    settings (it opens the new runtime on the same ledger before closing the old one)."""
    database = tmp_path / "ledger.sqlite"
    first = SyncLock.try_acquire(database)
    second = SyncLock.try_acquire(database)
    assert first is not None and second is not None
    first.publish(SyncHolder(os.getpid(), "this process", datetime.now(UTC), 1, "a"))
    first.release()
    assert holders(database).first == "refused"  # still held through `second`
    holder = read_holder(database)
    assert holder is not None and holder.command == "this process"
    second.release()
    assert read_holder(database) is None
    assert holders(database).first == "held"


def test_a_torn_record_reads_as_nobody(tmp_path):
    database = tmp_path / "ledger.sqlite"
    lock_path(database).write_text('{"pid": 12, "comm')
    assert read_holder(database) is None
    assert read_holder(tmp_path / "other.sqlite") is None  # no lock file at all


def test_data_version_moves_when_another_connection_commits(tmp_path):
    """The viewer's cue to reload (app.ownership)."""
    database = tmp_path / "ledger.sqlite"
    writer = sqlite3.connect(database, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("CREATE TABLE t (x)")
        versions = DataVersion(database)
        try:
            before = versions.version()
            assert before is not None and versions.version() == before  # nobody wrote
            writer.execute("INSERT INTO t VALUES (1)")
            after = versions.version()
            assert after is not None and after != before
            assert versions.version() == after
        finally:
            versions.close()
    finally:
        writer.close()
