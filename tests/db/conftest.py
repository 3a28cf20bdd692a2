"""Fixtures for the database layer: real SQLite files in tmp_path, real Alembic."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command

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


def build_at(path: Path, revision: str) -> None:
    """A database migrated only up to `revision`, opened the way the seed app would (no WAL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(connection), revision)
            connection.commit()
    finally:
        engine.dispose()


def execute(path: Path, *statements: str) -> None:
    """Run raw SQL on the file with plain sqlite3 (as a seed-era app or another tool would)."""
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows from plain sqlite3."""
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
