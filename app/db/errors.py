"""Database errors with messages meant for people; the CLI maps every one to exit code 4.

Higher layers may not import SQLAlchemy, so nothing from SQLAlchemy or sqlite3 escapes app.db
unwrapped: `translate()` turns a driver error into one of these (the original stays chained).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class DatabaseError(Exception):
    """Base class: the database could not be used; nothing was changed by the failing step."""

    def __init__(self, message: str, *, location: str | Path | None = None) -> None:
        super().__init__(message)
        self.location = str(location) if location is not None else None


class DatabaseTooNewError(DatabaseError):
    """The database is stamped with a revision this version does not know (a newer app wrote it)."""

    def __init__(self, location: str | Path, revision: str, head: str) -> None:
        super().__init__(
            f"{location} is at database revision {revision!r}, which this version of "
            f"Position Sync does not know (it knows up to {head!r}); it was probably written by "
            "a newer version. The file was left untouched: use the newer version, or point "
            "--db at another file.",
            location=location,
        )
        self.revision = revision
        self.head = head


class DatabaseCorruptError(DatabaseError):
    """The file is not a SQLite database, or SQLite reports it as malformed."""


class DatabaseNotLedgerError(DatabaseError):
    """A valid SQLite file that is not a Position Sync ledger (no version stamp of ours)."""


class DatabaseLockedError(DatabaseError):
    """Another process held the database lock for longer than the busy timeout."""


class DatabaseReadOnlyError(DatabaseError):
    """The database (or its folder) cannot be written."""


class DatabaseIntegrityError(DatabaseError):
    """A write broke a constraint (unique, foreign key, CHECK); its transaction rolled back."""


class DatabaseMigrationError(DatabaseError):
    """A migration failed; its transaction was rolled back and the backup is intact."""


def translate(exc: BaseException, location: str | Path | None) -> DatabaseError:
    """The DatabaseError subclass that explains a driver or SQLAlchemy error to a person."""
    if isinstance(exc, DatabaseError):
        return exc
    text = str(getattr(exc, "orig", None) or exc)
    lowered = text.lower()
    where = f"{location}: " if location is not None else ""
    if "file is not a database" in lowered or "malformed" in lowered:
        return DatabaseCorruptError(
            f"{where}the file is not a usable SQLite database ({text}); it was left untouched.",
            location=location,
        )
    if "database is locked" in lowered or "database table is locked" in lowered:
        return DatabaseLockedError(
            f"{where}the database is busy (another Position Sync process is writing to it); "
            "try again in a moment.",
            location=location,
        )
    if "readonly" in lowered or "read-only" in lowered or isinstance(exc, PermissionError):
        return DatabaseReadOnlyError(
            f"{where}the database cannot be written ({text}); check the file and folder "
            "permissions.",
            location=location,
        )
    if "unable to open database file" in lowered:
        return DatabaseError(
            f"{where}the database file cannot be opened ({text}); check that the folder exists "
            "and is accessible.",
            location=location,
        )
    if isinstance(exc, sqlite3.IntegrityError) or "integrity" in type(exc).__name__.lower():
        return DatabaseIntegrityError(
            f"{where}a constraint was violated: {text}", location=location
        )
    return DatabaseError(f"{where}database error: {text}", location=location)
