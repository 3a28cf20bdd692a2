"""Databases this version must refuse, leaving the file exactly as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.db import engine as engine_module
from app.db import sqlite_file
from app.db.errors import (
    DatabaseCorruptError,
    DatabaseLockedError,
    DatabaseNotLedgerError,
    DatabaseTooNewError,
)
from app.db.migrate import backup, current, head_revision, open_database, upgrade
from tests.db.conftest import digest, execute, siblings


def make_too_new(path: Path, revision: str = "9999") -> None:
    """A real ledger (WAL mode, written by the app) then stamped by a 'newer version'."""
    upgrade(path)
    execute(path, f"UPDATE alembic_version SET version_num = '{revision}'")


def test_too_new_database_is_refused_untouched(db_path: Path) -> None:
    """Guards against stamping, downgrading or rewriting a database a newer version wrote."""
    make_too_new(db_path)
    before, files = digest(db_path), siblings(db_path)

    with pytest.raises(DatabaseTooNewError) as error:
        open_database(db_path)

    message = str(error.value)
    assert str(db_path) in message and "'9999'" in message and head_revision() in message
    assert error.value.revision == "9999"
    assert digest(db_path) == before
    assert siblings(db_path) == files  # no backup, no -wal/-shm left behind


def test_too_new_database_reports_its_revision(db_path: Path) -> None:
    """`current` reads an unknown revision without refusing or touching the file."""
    make_too_new(db_path, "0042")
    before = digest(db_path)
    assert current(db_path) == "0042"
    assert digest(db_path) == before


def test_garbage_file_is_refused_untouched(db_path: Path) -> None:
    """Guards against SQLite overwriting a file that is not a database at all."""
    db_path.parent.mkdir()
    db_path.write_bytes(b"these are not the bytes you are looking for\n" * 200)
    before = digest(db_path)

    with pytest.raises(DatabaseCorruptError, match="not a SQLite database") as error:
        open_database(db_path)

    assert str(db_path) in str(error.value)
    assert digest(db_path) == before
    assert siblings(db_path) == {db_path.name}


def test_malformed_database_is_refused_untouched(db_path: Path) -> None:
    """Guards against opening (and then syncing into) a ledger with damaged pages."""
    upgrade(db_path)
    execute(db_path, "PRAGMA journal_mode=DELETE")  # one file, so damage is where we put it
    data = bytearray(db_path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    assert len(data) >= 4 * page_size
    data[2 * page_size : 4 * page_size] = b"\xa5" * (2 * page_size)
    db_path.write_bytes(bytes(data))
    before = digest(db_path)

    with pytest.raises(DatabaseCorruptError) as error:
        open_database(db_path)

    assert str(db_path) in str(error.value)
    assert digest(db_path) == before


def test_truncated_database_is_refused(db_path: Path) -> None:
    """Guards against a half-copied ledger being treated as new and overwritten."""
    upgrade(db_path)
    execute(db_path, "PRAGMA journal_mode=DELETE")
    db_path.write_bytes(db_path.read_bytes()[:1024])
    before = digest(db_path)
    with pytest.raises(DatabaseCorruptError):
        open_database(db_path)
    assert digest(db_path) == before


def test_other_sqlite_database_is_refused_untouched(db_path: Path) -> None:
    """Guards against migrating some other program's SQLite file that --db pointed at."""
    db_path.parent.mkdir()
    execute(db_path, "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    before = digest(db_path)

    with pytest.raises(DatabaseNotLedgerError, match="photos") as error:
        open_database(db_path)

    assert str(db_path) in str(error.value)
    assert digest(db_path) == before


def test_locked_database_is_reported(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards against hanging forever (or a raw driver error) when another process writes."""
    upgrade(db_path)
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_S", 0.1)
    monkeypatch.setattr(sqlite_file, "BUSY_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises((DatabaseLockedError, DatabaseCorruptError)) as error:
            open_database(db_path)
        assert isinstance(error.value, DatabaseLockedError), error.value
    finally:
        holder.close()


def test_backup_never_overwrites(db_path: Path) -> None:
    """Guards against a second backup in the same second replacing the first."""
    from datetime import UTC, datetime

    upgrade(db_path)
    moment = datetime(2026, 11, 26, 13, 15, tzinfo=UTC)
    first = backup(db_path, now=moment)
    second = backup(db_path, now=moment)
    assert first.name == f"ledger.sqlite.bak-{head_revision()}-20261126T131500Z"
    assert second.name == first.name + "-1"
    assert first.exists() and second.exists()
