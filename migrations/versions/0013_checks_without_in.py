"""The CHECKs of enumerated columns as OR-ed comparisons instead of IN lists.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

app.db.tables.one_of: SQLite evaluates `x IN ('a', 'b', 'c', …)` (more than two constants) by
building an ephemeral index once per execution of the statement — once per row of an
executemany — so a first sync's 20,000 positions, events and observations rebuilt one index per
CHECK per row (about half of SQLite's work inserting them). `x = 'a' OR x = 'b' OR …` allows
exactly the same values (NULL passes either way) and is a few comparisons. Every CHECK `one_of`
declares is rewritten with the same values (frozen here), on PostgreSQL too, so both backends
keep one schema. No row changes.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "positions": {
        "status": ("OPEN", "CLOSED"),
        "close_reason": ("broker", "flip", "manual", "missing", "expired", "converted"),
        "pnl_basis": ("exact", "estimated", "unknown"),
    },
    "sync_runs": {
        "trigger": ("startup", "periodic", "position_update", "execution", "manual", "reconnect"),
        "status": ("ok", "failed", "skipped"),
    },
    "position_events": {
        "kind": (
            "OPENED",
            "INCREASED",
            "REDUCED",
            "CLOSED",
            "SPLIT",
            "ADJUSTED",
            "MISSING",
            "REAPPEARED",
            "MARKED_CLOSED",
            "CONVERTED",
        ),
        "price_source": ("fills", "market", "last_known", "manual"),
        "pnl_basis": ("exact", "estimated", "unknown"),
        "pnl_basis_fifo": ("exact", "estimated", "unknown"),
    },
    "observations": {
        "kind": ("reported", "absent", "absent_close", "user_close", "confirmed"),
    },
}


def _as_comparisons(name: str, values: tuple[str, ...]) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.column(name) == value for value in values))


def _as_in_list(name: str, values: tuple[str, ...]) -> sa.ColumnElement[bool]:
    return sa.column(name).in_(values)


def _rewrite(form: Callable[[str, tuple[str, ...]], sa.ColumnElement[bool]]) -> None:
    """Replace every CHECK of CHECKS with `form(name, values)` (one rebuild per SQLite table)."""
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, values in checks.items():
                batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
                batch.create_check_constraint(op.f(f"ck_{table}_{name}"), form(name, values))


def upgrade() -> None:
    """IN lists → OR-ed comparisons."""
    _rewrite(_as_comparisons)


def downgrade() -> None:
    """OR-ed comparisons → IN lists (the same values: every row stays valid)."""
    _rewrite(_as_in_list)
