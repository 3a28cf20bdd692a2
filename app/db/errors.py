"""Database errors with messages meant for people; the CLI maps every one to exit code 4.

Higher layers may not import SQLAlchemy, so nothing from SQLAlchemy, sqlite3 or psycopg escapes
app.db unwrapped: `translate()` turns a driver error into one of these (the original stays
chained). Messages name the database with `engine.describe()`, which never shows a password.
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


class DatabaseUnreachableError(DatabaseError):
    """The database server could not be reached or refused the login (PostgreSQL)."""


class DatabaseConflictError(DatabaseError):
    """The server aborted the transaction to resolve a conflict (deadlock, serialization)."""


# PostgreSQL SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_CONFLICT = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_PG_BUSY = frozenset({"55P03", "57014"})  # lock_not_available, query_canceled (timeouts)
_PG_LOGIN = frozenset({"28000", "28P01", "3D000"})  # bad authorization, password, no database


def _translate_postgresql(
    orig: BaseException, where: str, location: str | Path | None
) -> DatabaseError:
    """psycopg's errors by SQLSTATE; messages use the primary text (DETAIL may hold values)."""
    state: str = getattr(orig, "sqlstate", None) or ""
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig).strip()
    if state.startswith("23"):
        return DatabaseIntegrityError(
            f"{where}a constraint was violated: {primary}", location=location
        )
    if state in _PG_CONFLICT:
        return DatabaseConflictError(
            f"{where}the transaction collided with another writer ({primary}); nothing was "
            "changed, try again.",
            location=location,
        )
    if state in _PG_BUSY:
        return DatabaseLockedError(
            f"{where}the database is busy ({primary}); try again in a moment.", location=location
        )
    if state == "42501":
        return DatabaseReadOnlyError(
            f"{where}the database role lacks a privilege ({primary}); creating or upgrading the "
            "schema needs the owner role (position-sync db upgrade), syncing needs read and "
            "write access to the ledger tables.",
            location=location,
        )
    if state == "25006":
        return DatabaseReadOnlyError(
            f"{where}the database cannot be written ({primary}).", location=location
        )
    if state in _PG_LOGIN:
        return DatabaseUnreachableError(
            f"{where}the server refused the login ({primary}); check the user and database in "
            "the URL, and the password in PGPASSFILE (~/.pgpass) or PGPASSWORD.",
            location=location,
        )
    if not state or state.startswith("08"):
        return DatabaseUnreachableError(
            f"{where}cannot reach the PostgreSQL server ({primary}).", location=location
        )
    return DatabaseError(f"{where}database error: {primary}", location=location)


def translate(exc: BaseException, location: str | Path | None) -> DatabaseError:
    """The DatabaseError subclass that explains a driver or SQLAlchemy error to a person."""
    if isinstance(exc, DatabaseError):
        return exc
    where = f"{location}: " if location is not None else ""
    orig = getattr(exc, "orig", None) or exc
    if type(orig).__module__.partition(".")[0] == "psycopg":
        return _translate_postgresql(orig, where, location)
    text = str(orig)
    lowered = text.lower()
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
