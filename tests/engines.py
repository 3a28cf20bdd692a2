"""The database engines the suites run on: SQLite files, and PostgreSQL when a server is given.

`POSITION_SYNC_TEST_PG_URL` names a PostgreSQL role that may CREATE DATABASE (`.ci/dev test`
starts a throwaway server and sets it; see .ci/pg.sh). Every PostgreSQL test gets a database of
its own, created for it and dropped after it. Without the variable the PostgreSQL cases skip with
a reason that says how to run them — except under CI=true, where they fail: CI must run them.

tests/conftest.py loads this module as a plugin, so every suite can use its fixtures.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

PG_ENV = "POSITION_SYNC_TEST_PG_URL"
# Read at import: the autouse settings fixture removes POSITION_SYNC_* variables during tests.
_ADMIN_URL = os.environ.get(PG_ENV, "")
ENGINES = ("sqlite", "postgresql")
DROP_ATTEMPTS = 10


class PgServer:
    """Creates and drops uniquely named databases on the test server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url: URL = make_url(admin_url).set(drivername="postgresql+psycopg")
        self._engine = sa.create_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )

    def check(self) -> str:
        """The server's version; raises when it cannot be reached."""
        with self._engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar_one())

    def url(self, database: str) -> str:
        """A URL (password included) for one database on this server."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"ps_test_{uuid.uuid4().hex[:16]}"
        with self._engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by create_database (closing anything still connected)."""
        name = make_url(url).database
        for attempt in range(DROP_ATTEMPTS):
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except sa.exc.ProgrammingError as exc:
                # FORCE terminates the database's other backends; an autovacuum worker runs as
                # the bootstrap superuser, and a CREATEDB role may not terminate it
                # ("must be a member of the role whose process is being terminated"). The
                # worker finishes within moments: try again (the CI's own server runs with
                # autovacuum off, .ci/pg.sh; a server given by URL may not).
                if "InsufficientPrivilege" not in type(exc.orig).__name__ or (
                    attempt == DROP_ATTEMPTS - 1
                ):
                    raise
                time.sleep(0.5)

    def execute(self, sql: str) -> None:
        """Run a statement as the admin role (roles, grants)."""
        with self._engine.connect() as connection:
            connection.exec_driver_sql(sql)

    def dispose(self) -> None:
        """Release the admin engine."""
        self._engine.dispose()


def _unavailable(reason: str) -> None:
    message = (
        f"PostgreSQL not available ({reason}): the PostgreSQL cases did not run. Run `bash .ci/dev "
        f"test` (it starts a server where Debian's postgresql package is installed or, as root, "
        f"installable), or set {PG_ENV} to a URL of a role that may create databases."
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the PostgreSQL suites — {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL test server (skips, or fails under CI=true, when there is none)."""
    if not _ADMIN_URL:
        _unavailable(f"{PG_ENV} is not set")
    server = PgServer(_ADMIN_URL)
    try:
        server.check()
    except sa.exc.SQLAlchemyError as exc:
        server.dispose()
        _unavailable(f"cannot connect: {type(exc).__name__}")
    try:
        yield server
    finally:
        server.dispose()


@pytest.fixture
def pg_databases(pg_server: PgServer) -> Iterator[Callable[[], str]]:
    """new() → the URL of a fresh PostgreSQL database; all are dropped after the test."""
    made: list[str] = []

    def new() -> str:
        made.append(pg_server.create_database())
        return made[-1]

    yield new
    for url in made:
        pg_server.drop_database(url)


@pytest.fixture
def pg_url(pg_databases: Callable[[], str]) -> str:
    """One fresh PostgreSQL database."""
    return pg_databases()


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per engine: `[sqlite]` and `[postgresql]`."""
    return str(request.param)


@pytest.fixture
def ledger_urls(
    engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], str]:
    """new() → where a fresh ledger goes on this test's engine (a file path or a server URL)."""
    if engine_name == "postgresql":
        new: Callable[[], str] = request.getfixturevalue("pg_databases")
        return new
    count = 0

    def new_file() -> str:
        nonlocal count
        count += 1
        return str(tmp_path / "data" / f"ledger{count}.sqlite")

    return new_file


@pytest.fixture
def ledger_url(ledger_urls: Callable[[], str]) -> str:
    """Where a fresh ledger goes on this test's engine (nothing created yet)."""
    return ledger_urls()
