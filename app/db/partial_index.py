"""Partial indexes declared once for SQLite and PostgreSQL, without importing PostgreSQL's dialect.

SQLAlchemy validates a `postgresql_where=` keyword when the Index is built, and to do that it
imports the whole PostgreSQL dialect (sqlalchemy.dialects.postgresql and every driver module of
it: 30-70 ms on the 2-core benchmark machine) — on every start, SQLite ones included, because
app.db.tables declares such an index at import. So the predicate is carried in the index's
`info` (dialect-neutral) and handed to PostgreSQL's own index compiler only when a CREATE INDEX
is compiled for PostgreSQL (create_all, the migrations' drift tests); by then that dialect is
loaded anyway. SQLite, whose dialect every SQLite start loads regardless, keeps `sqlite_where`.
The DDL is SQLAlchemy's own on both backends (tests/db/test_migrations.py compares the migrated
schemas, predicates included, with create_all on each).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex

WHERE = "partial_index_where"
"""The key in Index.info holding the predicate (SQL text) for PostgreSQL."""


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of `columns` over the rows where `where` (SQL text) holds, on either backend."""
    return Index(name, *columns, unique=unique, sqlite_where=text(where), info={WHERE: where})


@compiles(CreateIndex, "postgresql")
def _create_postgresql_partial_index(create: CreateIndex, compiler: Any, **kw: Any) -> str:
    index = create.element
    where = index.info.get(WHERE)
    if where is not None:
        # Exactly what `postgresql_where=text(where)` would have declared (idempotent).
        index.dialect_options["postgresql"]["where"] = text(where)
    return str(compiler.visit_create_index(create, **kw))
