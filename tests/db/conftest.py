"""Fixtures for the database layer: real SQLite files in tmp_path (and, for the tests that take
`any_db` / `ledger_url`, fresh PostgreSQL databases — see tests.engines), real Alembic."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config

from app.db.database import Database
from app.db.migrate import alembic_config, open_database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a ledger goes; its folder does not exist yet."""
    return tmp_path / "data" / "ledger.sqlite"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    """A fresh ledger at head."""
    database = open_database(db_path)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def any_db(ledger_url: str) -> Iterator[Database]:
    """A fresh ledger at head, once on SQLite and once on PostgreSQL."""
    database = open_database(ledger_url)
    try:
        yield database
    finally:
        database.close()


def build_at(path: Path | str, revision: str) -> None:
    """A database migrated only up to `revision`, opened the way the seed app would (no WAL).

    A path is a SQLite file; a `postgresql…://` URL a server database.
    """
    if "://" not in str(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    _migrate(path, command.upgrade, revision)


def downgrade_to(path: Path | str, revision: str) -> None:
    """Run the migrations' downgrades of a SQLite file or a server database down to `revision`."""
    _migrate(path, command.downgrade, revision)


def _migrate(path: Path | str, step: Callable[[Config, str], None], revision: str) -> None:
    url = str(path) if "://" in str(path) else f"sqlite:///{path}"
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            step(alembic_config(connection), revision)
            connection.commit()
    finally:
        engine.dispose()


def execute(path: Path | str, *statements: str) -> None:
    """Run raw SQL on the file with plain sqlite3 (as a seed-era app or another tool would).

    A `postgresql…://` URL runs them on that server database instead, in one transaction.
    """
    if "://" in str(path):
        engine = sqlalchemy.create_engine(str(path), poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.begin() as server:
                for statement in statements:
                    server.exec_driver_sql(statement)
        finally:
            engine.dispose()
        return
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def query(path: Path | str, sql: str) -> list[tuple[object, ...]]:
    """Rows from plain sqlite3 (or from the server database a `postgresql…://` URL names)."""
    if "://" in str(path):
        engine = sqlalchemy.create_engine(str(path), poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as server:
                return [tuple(row) for row in server.exec_driver_sql(sql)]
        finally:
            engine.dispose()
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def digest(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def siblings(path: Path) -> set[str]:
    """Names of every file in the database's folder."""
    return {entry.name for entry in path.parent.iterdir()}
