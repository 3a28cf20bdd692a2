"""Engines for a database URL (or a plain file path): SQLite files and PostgreSQL servers.

SQLite gets the setup this app relies on (WAL, foreign keys, BEGIN IMMEDIATE for writers and
BEGIN DEFERRED + query_only for readers, one connection);
PostgreSQL (`postgresql+psycopg://`, a desk sharing one ledger) gets READ COMMITTED, a connect
timeout and an application name. Nothing SQLite-specific is sent to PostgreSQL.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import QueuePool, StaticPool

from app.db.errors import DatabaseError, DatabaseReadOnlyError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 5.0
FILE_MODE = 0o600
FOLDER_MODE = 0o700
PG_CONNECT_TIMEOUT_S = 10
PG_LOCK_TIMEOUT = "30s"  # a writer waiting longer for another's lock gives up (DatabaseLockedError)
PG_DRIVER = "postgresql+psycopg"
READ_ONLY = "position_sync_read_only"
"""Execution option of a reader's connection (`Database.read`): its transaction is a snapshot
that takes no lock — DEFERRED and query_only on SQLite, REPEATABLE READ READ ONLY on PostgreSQL."""
READ_OPTIONS: dict[str, Any] = {READ_ONLY: True}
PG_READ_OPTIONS: dict[str, Any] = {
    READ_ONLY: True,
    "isolation_level": "REPEATABLE READ",  # one snapshot for all of a reader's statements
    "postgresql_readonly": True,
}
APPLICATION_NAME = "position-sync"


def to_url(url_or_path: str | Path | URL) -> URL:
    """A SQLAlchemy URL; a plain path (no `scheme://`) becomes an absolute `sqlite:///` URL."""
    if isinstance(url_or_path, URL):
        return url_or_path
    value = str(url_or_path)
    if "://" not in value:
        return URL.create("sqlite", database=str(Path(value).expanduser().resolve()))
    try:
        url = make_url(value)
    except ArgumentError as exc:
        # The value may hold a password: name the problem, not the value.
        raise DatabaseError(
            "the database setting is neither a database URL nor a file path"
        ) from exc
    backend = url.get_backend_name()
    if backend == "postgresql" and url.drivername in ("postgresql", "postgresql+psycopg"):
        return url.set(drivername=PG_DRIVER)  # psycopg 3 is the driver this app ships
    if backend == "sqlite" and url.drivername in ("sqlite", "sqlite+pysqlite"):
        return url
    raise DatabaseError(
        f"{describe(url)}: unsupported database; use a SQLite file (sqlite:///PATH or a path) "
        f"or PostgreSQL ({PG_DRIVER}://USER@HOST/DATABASE)"
    )


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL; None for other databases and for in-memory SQLite."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def describe(url: URL) -> str:
    """How to name the database to a person: the file path, or the URL without its password.

    libpq also takes a password as a query parameter (`?password=…`, `?sslpassword=…`); those
    are masked too. Logs and error messages name databases only through this function.
    """
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    secret = [key for key in url.query if "password" in key.lower()]
    if secret:
        url = url.update_query_dict({key: "MASKED" for key in secret})
    return url.render_as_string(hide_password=True).replace("=MASKED", "=***")


def create_private_file(path: Path) -> None:
    """Create an empty database file readable by the owner only (and its folder, 0700).

    SQLite would create the file with the umask's mode; creating it first keeps a ledger of
    account positions private from other local users.
    """
    try:
        path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    except PermissionError as exc:
        raise DatabaseReadOnlyError(
            f"{path}: cannot create the database file ({exc.strerror}); check the folder "
            "permissions or pass --db",
            location=path,
        ) from exc
    except OSError as exc:
        raise DatabaseError(
            f"{path}: cannot create the database file ({exc.strerror})", location=path
        ) from exc
    os.close(fd)


def create_engine(url_or_path: str | Path | URL) -> Engine:
    """An engine for the URL; SQLite gets WAL, foreign keys, a busy timeout and ONE connection.

    One connection because SQLite before 3.51.3 has a WAL bug when two connections write or
    checkpoint at once; every use goes through the Database's single thread anyway. The file is
    not created here (see `create_private_file`).
    """
    url = to_url(url_or_path)
    if url.get_backend_name() != "sqlite":
        return _postgresql_engine(url)
    in_memory = sqlite_path(url) is None
    engine = sqlalchemy.create_engine(
        url,
        # The connection is made on the database thread but may be closed from another at exit.
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        poolclass=StaticPool if in_memory else QueuePool,
        hide_parameters=True,  # error messages would otherwise carry account codes into logs
        **({} if in_memory else {"pool_size": 1, "max_overflow": 0, "pool_timeout": 1.0}),
    )
    _configure_sqlite(engine, in_memory=in_memory)
    return engine


def _postgresql_engine(url: URL) -> Engine:
    """A PostgreSQL engine: READ COMMITTED, a connect timeout, an application name.

    READ COMMITTED is set here, not left to the server's default (a DBA may change that): a sync
    takes its accounts' advisory locks first and only then reads, and under READ COMMITTED every
    later statement sees what the previous lock holder committed. REPEATABLE READ would freeze
    the snapshot at the lock statement, before the wait, and read the state the other syncer had
    just replaced (see app.db.concurrency). Every statement still sees committed data only.
    The password comes from the URL, PGPASSWORD or the PGPASSFILE/~/.pgpass file (libpq).
    """
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        connect_args["application_name"] = APPLICATION_NAME
    if "options" not in url.query:
        # A syncer that hangs inside its transaction must not stall the desk's other syncers
        # forever: their wait for its account locks (or table locks) ends with an error.
        connect_args["options"] = f"-c lock_timeout={PG_LOCK_TIMEOUT}"
    return sqlalchemy.create_engine(
        url,
        isolation_level="READ COMMITTED",
        pool_pre_ping=True,
        hide_parameters=True,  # error messages would otherwise carry account codes into logs
        connect_args=connect_args,
    )


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    """Pragmas on every new connection, and real transactions (including DDL) for SQLAlchemy."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Python 3.11's sqlite3 starts no transaction before DDL or SELECT; hand BEGIN to
        # SQLAlchemy (the "begin" hook below) so migrations and reads are really atomic.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("SQLite refused WAL mode (got %r); continuing with it", mode)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints in WAL mode
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sqlalchemy.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A reader's snapshot: DEFERRED takes no lock (in WAL mode readers never wait for a
            # writer, and a writer never waits for them); query_only makes a write in it an
            # error here instead of an attempt to take the write lock mid-read.
            connection.exec_driver_sql("BEGIN DEFERRED")
            connection.exec_driver_sql("PRAGMA query_only=ON")
            return
        # IMMEDIATE takes the write lock up front, waiting up to the busy timeout, instead of
        # failing when a read-then-write later tries to write while another process writes.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def end_sqlite_read(connection: sqlalchemy.Connection) -> None:
    """Lift a finished read transaction's `query_only` (on the raw connection: a statement
    through SQLAlchemy would begin another transaction). The next writer needs it off."""
    if connection.dialect.name != "sqlite" or connection.invalidated:
        return
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None:
        dbapi.execute("PRAGMA query_only=OFF")


def set_sqlite_foreign_keys(connection: sqlalchemy.Connection, enabled: bool) -> None:
    """Switch foreign key enforcement; only effective outside a transaction, so sent raw."""
    if connection.dialect.name != "sqlite":
        return
    if connection.in_transaction():
        raise RuntimeError("PRAGMA foreign_keys is ignored inside a transaction")
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    finally:
        cursor.close()


def sqlite_foreign_key_violations(connection: sqlalchemy.Connection) -> list[tuple[Any, ...]]:
    """Rows of `PRAGMA foreign_key_check` (empty when every reference resolves)."""
    if connection.dialect.name != "sqlite":
        return []
    return [tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")]
