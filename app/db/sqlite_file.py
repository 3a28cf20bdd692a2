"""Read-only inspection and online backup of a SQLite ledger file, with plain `sqlite3`.

Both run before any engine opens the file: the engine switches it to WAL mode, which rewrites
the header of a file that must stay byte-identical when this version refuses it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from app.db.engine import BUSY_TIMEOUT_S, FILE_MODE
from app.db.errors import (
    DatabaseCorruptError,
    DatabaseError,
    DatabaseNotLedgerError,
    DatabaseReadOnlyError,
    translate,
)

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"
_HEADER = b"SQLite format 3\x00"
_HEADER_SIZE = 100


@contextlib.contextmanager
def _read_only(path: Path, *, peek: bool) -> Iterator[sqlite3.Connection]:
    """A connection that cannot change the file.

    A `peek` (a few small reads) leaves no -wal/-shm files behind when none exist: `mode=ro` on a
    WAL-mode file creates them. `immutable` skips locking and the WAL, so it is used only when
    no WAL or journal exists, i.e. when no other connection is writing.
    """
    wal = path.with_name(path.name + "-wal")
    journal = path.with_name(path.name + "-journal")
    quiet = peek and not wal.exists() and not journal.exists()
    flag = "immutable=1" if quiet else "mode=ro"
    connection = sqlite3.connect(
        f"{path.as_uri()}?{flag}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
    )
    try:
        yield connection
    finally:
        connection.close()


def _check_header(path: Path) -> None:
    with path.open("rb") as file:
        header = file.read(_HEADER_SIZE)
    if len(header) < _HEADER_SIZE or not header.startswith(_HEADER):
        raise DatabaseCorruptError(
            f"{path} is not a SQLite database (its header is wrong); it was left untouched. "
            "Restore it from a backup or point --db at another file.",
            location=path,
        )


def _require_ok(path: Path, connection: sqlite3.Connection) -> None:
    problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        raise DatabaseCorruptError(
            f"{path} is damaged (SQLite quick_check: {'; '.join(map(str, problems))}); it was left "
            "untouched. Restore it from a backup (files named *.bak-*) or point --db elsewhere.",
            location=path,
        )


def read_revision(path: Path, *, verify: bool = False) -> str | None:
    """The ledger revision stamped in the file; None when there is no ledger yet.

    "No ledger yet" is a missing file, an empty file or a database without tables. Refuses (raises
    DatabaseCorruptError / DatabaseNotLedgerError) anything else that is not a ledger. With
    `verify`, also runs SQLite's quick_check, which reads every page. Never writes.
    """
    if not path.exists():
        return None
    if not path.is_file():
        raise DatabaseError(f"{path} is not a file", location=path)
    if path.stat().st_size == 0:
        return None
    _check_header(path)
    try:
        with _read_only(path, peek=True) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if verify:
                _require_ok(path, connection)
            if not tables:
                return None
            if VERSION_TABLE not in tables:
                listed = ", ".join(sorted(tables)[:5])
                raise DatabaseNotLedgerError(
                    f"{path} is a SQLite database but not a Position Sync ledger (no "
                    f"{VERSION_TABLE} table; it holds: {listed}); it was left untouched. "
                    "Point --db at another file.",
                    location=path,
                )
            revisions = sorted(
                str(row[0])
                for row in connection.execute(f"SELECT version_num FROM {VERSION_TABLE}")
            )
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    if not revisions:
        if tables == {VERSION_TABLE}:
            return None
        raise DatabaseNotLedgerError(
            f"{path} has tables but an empty {VERSION_TABLE} stamp, so it is not a ledger this "
            "version can upgrade; it was left untouched.",
            location=path,
        )
    return ",".join(revisions)


def require_writable(path: Path) -> None:
    """Refuse, naming the file, a ledger whose file or folder cannot be written.

    SQLite in WAL mode writes the file and creates `-wal`/`-shm` files beside it; on a read-only
    mount it fails with a bare "unable to open database file" only once the engine connects.
    """
    for target, what in ((path, "file"), (path.parent, "folder")):
        if target.exists() and not os.access(target, os.W_OK):
            raise DatabaseReadOnlyError(
                f"{path}: the database {what} cannot be written (a read-only location, or "
                "no write permission); Position Sync writes the file and keeps -wal/-shm files "
                "beside it. Nothing was changed: make the folder writable or point --db "
                "elsewhere.",
                location=path,
            )


def backup_file(path: Path, label: str, now: datetime | None = None) -> Path:
    """Copy the database with SQLite's online backup API to `<name>.bak-<label>-<UTC time>`.

    The copy is mode 0600 and consistent even while another process writes; an existing file is
    never overwritten (a `-1`, `-2`… suffix is added instead). It is written under a hidden
    `.…partial` name and given its backup name only once complete and checked, so a crash
    midway never leaves an empty or truncated file that looks like a backup.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stem = f"{path.name}.bak-{label}-{moment:%Y%m%dT%H%M%SZ}"
    try:
        fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise translate(exc, path.parent) from exc
    os.close(fd)
    partial = Path(name)
    partial.chmod(FILE_MODE)  # mkstemp's 0600 already; said here since it is the contract
    try:
        with _read_only(path, peek=False) as source:
            destination = sqlite3.connect(partial, isolation_level=None)
            try:
                source.backup(destination)
                problems = [row[0] for row in destination.execute("PRAGMA quick_check(5)")]
            finally:
                destination.close()
        if problems != ["ok"]:
            raise DatabaseCorruptError(
                f"the backup of {path} failed its check ({'; '.join(map(str, problems))})",
                location=path,
            )
        target = _publish(partial, path, stem)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.Error | OSError):
            raise translate(exc, path) from exc
        raise
    log.info("backed up %s to %s", path, target)
    return target


def _publish(partial: Path, path: Path, stem: str) -> Path:
    """Give the finished copy the first free backup name (never replacing a file)."""
    for attempt in itertools.count():
        target = path.with_name(stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            os.link(partial, target)  # fails if the name exists, unlike a rename on POSIX
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system
            if target.exists():
                continue
            os.rename(partial, target)
            return target
        partial.unlink()
        return target
    raise AssertionError("unreachable")
