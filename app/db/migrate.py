"""Alembic run from code: `open_database`, `upgrade`, `current`, `backup`.

Opening a ledger: a missing (or empty) SQLite file is created (0600) and migrated; one at an
older revision is checked and backed up, then migrated in ONE transaction; one stamped with a
revision this version does not know, a corrupt file and a non-ledger SQLite file are refused with
the file left byte-identical (they are inspected read-only before any engine opens them).

A PostgreSQL database (created beforehand by its owner) is migrated the same way, in one
transaction under an advisory lock, without a backup: the DBA's pg_dump is the backup there. One
stamped with an unknown (newer) revision, or holding tables but no stamp, is refused untouched.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

import app

if TYPE_CHECKING:
    # Alembic (with Mako and Pygments) takes 0.1-0.3 s to import: opening a SQLite ledger that
    # is already at head needs none of it (see _current_head), so the window paints sooner.
    from alembic.config import Config
    from alembic.script import ScriptDirectory
from app.db import engine as engine_module
from app.db.concurrency import lock_migrations
from app.db.database import Database
from app.db.engine import (
    create_engine,
    create_private_file,
    describe,
    set_sqlite_foreign_keys,
    sqlite_foreign_key_violations,
    sqlite_path,
    to_url,
)
from app.db.errors import (
    DatabaseError,
    DatabaseMigrationError,
    DatabaseNotLedgerError,
    DatabaseTooNewError,
    translate,
)
from app.db.sqlite_file import backup_file, read_revision, require_writable

log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """The Alembic scripts: beside the `app` package, or in the PyInstaller bundle when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "migrations"
    assert app.__file__ is not None
    return Path(app.__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config without alembic.ini; migrations/env.py runs on `connection`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=]+)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE
)


@functools.cache
def _current_head() -> str | None:
    """The head revision read from the scripts' `revision = "…"` / `down_revision = …` lines,
    without importing Alembic; None when that reading is not certain (a script without both
    lines, a merge, several heads) — callers then ask Alembic. tests/db/test_fast_open.py checks
    it equals Alembic's head."""
    revisions: dict[str, str | None] = {}
    for script in migrations_dir().joinpath("versions").glob("*.py"):
        found = {name: value for name, value in _REVISION_LINE.findall(script.read_text())}
        if set(found) != {"revision", "down_revision"} or not found["revision"]:
            return None
        revisions[found["revision"]] = found["down_revision"] or None
    heads = set(revisions) - {down for down in revisions.values() if down}
    return heads.pop() if len(heads) == 1 else None


def head_revision() -> str:
    """The newest revision this version knows (the one `upgrade` reaches)."""
    head = _scripts().get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def known_revisions() -> frozenset[str]:
    """Every revision identifier this version knows (`0001` … head)."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """What `upgrade` did: revisions before/after, the backup made, whether the file was new."""

    location: str
    before: str | None
    after: str
    backup: Path | None
    created: bool

    @property
    def changed(self) -> bool:
        """Whether any migration ran."""
        return self.before != self.after


def current(url: str | Path | URL) -> str | None:
    """The database's revision (possibly one this version does not know); None if none yet.

    Read-only: a missing SQLite file is not created. Raises DatabaseError subclasses for corrupt
    and non-ledger files.
    """
    target = to_url(url)
    path = sqlite_path(target)
    if path is not None:
        return read_revision(path)
    if target.get_backend_name() == "sqlite":
        return None  # in memory: nothing persists between processes
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(target)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise translate(exc, describe(target)) from exc
    finally:
        engine.dispose()


def backup(url: str | Path | URL, now: datetime | None = None) -> Path:
    """Back up a SQLite ledger beside itself (`<name>.bak-<revision>-<UTC time>`, mode 0600)."""
    target = to_url(url)
    path = sqlite_path(target)
    if path is None:
        raise DatabaseError(
            f"{describe(target)}: backups are made for SQLite files only; back up PostgreSQL "
            "with pg_dump"
        )
    if not path.exists():
        raise DatabaseError(f"{path}: no database to back up", location=path)
    revision = read_revision(path)
    return backup_file(path, revision or "empty", now)


def upgrade(url: str | Path | URL) -> UpgradeResult:
    """Create or migrate the database to head (backing up an out-of-date SQLite file first)."""
    database, result = _open(url)
    database.close()
    return result


def open_database(url: str | Path | URL) -> Database:
    """A ready `Database` at head: created, or backed up and migrated, or refused (see module).

    Blocking (a migration can take seconds); from the GUI, call it before the window shows or
    in an executor.
    """
    database, _ = _open(url)
    return database


def _open(url: str | Path | URL) -> tuple[Database, UpgradeResult]:
    target = to_url(url)
    location = describe(target)
    path = sqlite_path(target)
    if path is not None and (fast_head := _current_head()) is not None:
        # Already at head (the common start): checked and opened without Alembic.
        stamped = read_revision(path, verify=True)
        if stamped == fast_head:
            require_writable(path)
            _probe_write_lock(path)
            return Database(create_engine(target)), UpgradeResult(
                location, stamped, stamped, None, created=False
            )
    head = head_revision()
    before: str | None = None
    backup_path: Path | None = None
    created = False
    if path is not None:
        # quick_check reads every page (about 30 ms for 12 MB): a damaged ledger is refused
        # here, untouched, rather than half-way through a sync or a migration.
        before = read_revision(path, verify=True)
        if before is not None and before not in known_revisions():
            raise DatabaseTooNewError(path, before, head)
        require_writable(path)
        if before is None:
            created = not path.exists() or path.stat().st_size == 0
            create_private_file(path)
        elif before != head:
            backup_path = backup_file(path, before)
    database = Database(create_engine(target))
    try:
        start, after = database.call(functools.partial(_migrate, database.engine, location))
    except BaseException:
        database.close()
        raise
    if path is None:
        before = start
        created = start is None
    if start != after:
        log.info("migrated %s from %s to %s", location, start or "nothing", after)
    return database, UpgradeResult(location, before, after, backup_path, created)


def _probe_write_lock(path: Path) -> None:
    """Take and release the write lock, as a migration check would: another process holding
    it past the busy timeout is reported now (DatabaseLockedError), not at the first sync."""
    connection = sqlite3.connect(path, timeout=engine_module.BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    finally:
        connection.close()


def _refuse_foreign_tables(connection: Connection, location: str) -> None:
    """A server database with tables but no revision stamp is not ours to migrate.

    (A SQLite file was inspected before the engine opened it; this covers PostgreSQL, where the
    URL may name a database that another application uses.)
    """
    if connection.dialect.name == "sqlite":
        return
    tables = sorted(set(inspect(connection).get_table_names()) - {"alembic_version"})
    if tables:
        raise DatabaseNotLedgerError(
            f"{location} holds tables but no Position Sync revision stamp (it holds: "
            f"{', '.join(tables[:5])}); it was left untouched. Give the ledger a database of "
            "its own.",
            location=location,
        )


def _migrate(engine: Engine, location: str) -> tuple[str | None, str]:
    """On the database thread: upgrade to head in one transaction; (revision before, after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util.exc import CommandError

    head = head_revision()
    try:
        with engine.connect() as connection:
            # Rebuilding a referenced table (batch mode) must not trip foreign keys midway;
            # the whole result is checked before commit instead.
            set_sqlite_foreign_keys(connection, False)
            try:
                with connection.begin():
                    # Two workstations starting a new version at once: one migrates, the other
                    # waits here and then finds the database at head.
                    lock_migrations(connection)
                    start = MigrationContext.configure(connection).get_current_revision()
                    if start is not None and start not in known_revisions():
                        raise DatabaseTooNewError(location, start, head)
                    if start is None:
                        _refuse_foreign_tables(connection, location)
                    if start != head:
                        command.upgrade(alembic_config(connection), "head")
                        violations = sqlite_foreign_key_violations(connection)
                        if violations:
                            raise DatabaseMigrationError(
                                f"{location}: upgrading left {len(violations)} broken references "
                                f"(first: {violations[0]}); nothing was changed",
                                location=location,
                            )
            finally:
                if not connection.invalidated:
                    set_sqlite_foreign_keys(connection, True)
    except DatabaseError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        error = translate(exc, location)
        if type(error) is not DatabaseError:  # locked, read-only, corrupt: say so plainly
            raise error from exc
        raise DatabaseMigrationError(
            f"{location}: upgrading to {head} failed ({exc}); nothing was changed",
            location=location,
        ) from exc
    except (CommandError, ValueError) as exc:
        raise DatabaseMigrationError(
            f"{location}: upgrading to {head} failed ({exc}); nothing was changed",
            location=location,
        ) from exc
    return start, head
