"""Driver errors become DatabaseError subclasses with messages for people."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from app.db.errors import (
    DatabaseCorruptError,
    DatabaseError,
    DatabaseIntegrityError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    translate,
)
from app.db.migrate import head_revision, migrations_dir, upgrade


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), DatabaseLockedError),
        (sqlite3.OperationalError("attempt to write a readonly database"), DatabaseReadOnlyError),
        (PermissionError(13, "Permission denied"), DatabaseReadOnlyError),
        (sqlite3.DatabaseError("file is not a database"), DatabaseCorruptError),
        (sqlite3.DatabaseError("database disk image is malformed"), DatabaseCorruptError),
        (sqlite3.IntegrityError("UNIQUE constraint failed: accounts.code"), DatabaseIntegrityError),
        (sqlite3.OperationalError("unable to open database file"), DatabaseError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, type) else str(value),
)
def test_translate(error: Exception, expected: type[DatabaseError], tmp_path: Path) -> None:
    """Guards against raw driver errors (or the wrong advice) reaching the user."""
    translated = translate(error, tmp_path / "ledger.sqlite")
    assert type(translated) is expected
    assert str(tmp_path / "ledger.sqlite") in str(translated)
    assert translated.location == str(tmp_path / "ledger.sqlite")


def test_migrations_are_found_beside_the_package_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards against migrations resolved from the current directory (breaks outside the repo)."""
    monkeypatch.chdir(tmp_path)
    assert (migrations_dir() / "env.py").is_file()
    assert upgrade(tmp_path / "elsewhere.sqlite").after == head_revision()


def test_migrations_come_from_the_bundle_when_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PyInstaller build reads sys._MEIPASS/migrations."""
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert migrations_dir() == tmp_path / "migrations"
