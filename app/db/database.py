"""`Database`: the engine plus the one thread that does all database work."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import PG_READ_OPTIONS, READ_OPTIONS, describe, end_sqlite_read, sqlite_path
from app.db.errors import translate

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """Owns an engine and a single worker thread; every session runs on that thread.

    `run(fn, ...)` runs `fn(session, *args, **kwargs)` inside one writing transaction (on
    SQLite a BEGIN IMMEDIATE, so a read-then-write cannot interleave with another process's
    write; on PostgreSQL READ COMMITTED, where such a `fn` takes its accounts' locks first, see
    app.db.concurrency), committed when `fn` returns, rolled back when it raises. `read(fn, ...)`
    runs a reader in a snapshot that takes no lock. Return domain values, never ORM
    rows (the session is closed by the time the caller sees the result). Errors the database
    reports (locked, read-only, corrupt, a broken constraint, an unreachable server) arrive as
    `app.db.errors.DatabaseError` subclasses; anything else from `fn`, including SQLAlchemy
    usage errors (bugs), arrives unchanged.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(bind=engine)
        self._thread: threading.Thread | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="position-sync-db", initializer=self._remember
        )
        self._closed = False
        self.location = describe(engine.url)

    def _remember(self) -> None:
        self._thread = threading.current_thread()

    @property
    def url(self) -> URL:
        """The engine's URL (render it with `describe()`, which hides passwords)."""
        return self._engine.url

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None (PostgreSQL, in-memory SQLite)."""
        return sqlite_path(self._engine.url)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is a SQLite database (a file, or in memory)."""
        return self._engine.dialect.name == "sqlite"

    @property
    def engine(self) -> Engine:
        """The engine; for app.db internals (migrations), use it only on the database thread."""
        return self._engine

    async def run(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(session, ...)` in one transaction on the database thread; await the result.

        Cancelling the awaiting task does not stop `fn`: it still commits or rolls back.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(self._in_transaction, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    async def read(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(session, ...)` in a read-only snapshot transaction on the database thread.

        The transaction takes no lock: a read never waits for another process's write (SQLite
        in WAL mode: BEGIN DEFERRED, `query_only`; PostgreSQL: REPEATABLE READ READ ONLY), and
        sees one consistent snapshot across its statements. A write inside `fn` is an error.
        What reads then writes must use `run`, whose transaction holds the write lock from the
        start (a deferred read upgraded to a write fails when another process committed since).
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(self._in_read, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def read_sync(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Blocking `read` for the CLI and tests; never call it from the event loop's thread."""
        return self.call(functools.partial(self._in_read, fn, *args, **kwargs))

    def run_sync(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Blocking `run` for the CLI and tests; never call it from the event loop's thread."""
        return self.call(functools.partial(self._in_transaction, fn, *args, **kwargs))

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain callable on the database thread and wait (app.db internals: migrations)."""
        if self._closed:
            raise RuntimeError(f"database {self.location} is closed")
        if threading.current_thread() is self._thread:
            # A nested call would wait for the thread it is running on, and the one
            # connection is already checked out.
            raise RuntimeError("Database.run_sync called from the database thread itself")
        return self._executor.submit(fn).result()

    def _in_transaction(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        try:
            with self._sessions() as session, session.begin():
                return fn(session, *args, **kwargs)
        except (DBAPIError, sqlite3.Error) as exc:
            raise translate(exc, self.location) from exc

    def _in_read(
        self, fn: Callable[Concatenate[Session, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        options = READ_OPTIONS if self.is_sqlite else PG_READ_OPTIONS
        try:
            with self._engine.connect() as plain:
                connection = plain.execution_options(**options)
                try:
                    with connection.begin(), self._sessions(bind=connection) as session:
                        result = fn(session, *args, **kwargs)
                        # An object `fn` added or changed is written (and refused) here, not
                        # silently dropped with the session.
                        session.flush()
                        return result
                finally:
                    end_sqlite_read(connection)
        except (DBAPIError, sqlite3.Error) as exc:
            raise translate(exc, self.location) from exc

    def close(self) -> None:
        """Close the connection (checkpointing SQLite's WAL) and stop the thread; idempotent."""
        if self._closed:
            return
        try:
            self._executor.submit(self._engine.dispose).result()
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)
            log.debug("closed database %s", self.location)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.location!r})"
