"""The one-OPEN-row partial index (app.db.partial_index): the same predicate on both backends, and
a SQLite ledger used without importing SQLAlchemy's PostgreSQL dialect (30-70 ms of every
start, the window's included, when `postgresql_where=` was declared on the Index)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex

from app.db.migrate import open_database
from app.db.tables import OPEN_ONLY, PositionRow

REPO = Path(__file__).resolve().parents[2]
INDEX = "uq_positions_open_account_id_con_id"


def _create(dialect: object) -> str:
    index = next(i for i in PositionRow.__table__.indexes if i.name == INDEX)
    return " ".join(str(CreateIndex(index).compile(dialect=dialect)).split())


def test_both_backends_create_the_same_partial_unique_index():
    expected = f"CREATE UNIQUE INDEX {INDEX} ON positions (account_id, con_id) WHERE {OPEN_ONLY}"
    assert _create(sqlite.dialect()) == expected
    assert _create(postgresql.dialect()) == expected
    assert _create(postgresql.dialect()) == expected  # the hook is idempotent


def test_a_sqlite_ledger_at_head_is_opened_and_read_without_the_postgresql_dialect(tmp_path):
    """In a fresh process (this one has PostgreSQL's dialect loaded by the test above). Creating
    or migrating a ledger runs Alembic, whose DDL package loads every dialect: not measured."""
    ledger = tmp_path / "ledger.sqlite"
    open_database(ledger).close()  # created at head, here
    code = textwrap.dedent(f"""
        import sys
        from app.db.migrate import open_database
        from app.db.repository import queries

        database = open_database({str(ledger)!r})  # at head: opened without Alembic
        database.read_sync(queries.position_counts)
        database.close()
        print(sorted(m for m in sys.modules if "postgresql" in m or m == "alembic"))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
