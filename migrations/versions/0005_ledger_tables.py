"""The ledger's own tables: `sync_runs`, `position_events`, `executions`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import ExactDecimal

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SYNC_TRIGGERS = ("startup", "periodic", "position_update", "execution", "manual", "reconnect")
SYNC_STATUSES = ("ok", "failed", "skipped")
EVENT_KINDS = (
    "OPENED",
    "INCREASED",
    "REDUCED",
    "CLOSED",
    "SPLIT",
    "ADJUSTED",
    "MISSING",
    "REAPPEARED",
    "MARKED_CLOSED",
)
PRICE_SOURCES = ("fills", "market", "last_known", "manual")


def one_of(table: str, name: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """The same CHECK app.db.tables.one_of declares, with this revision's values frozen."""
    return sa.CheckConstraint(sa.column(name).in_(values), name=op.f(f"ck_{table}_{name}"))


def upgrade() -> None:
    """Create the three tables and their indexes."""
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("positions_seen", sa.Integer(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
        one_of("sync_runs", "trigger", SYNC_TRIGGERS),
        one_of("sync_runs", "status", SYNC_STATUSES),
    )
    op.create_index(op.f("ix_sync_runs_started_at"), "sync_runs", ["started_at"])

    op.create_table(
        "position_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position_id", sa.Integer(), nullable=False),
        sa.Column("sync_run_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("quantity_before", ExactDecimal(), nullable=False),
        sa.Column("quantity_after", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=True),
        sa.Column("price_source", sa.String(length=16), nullable=True),
        sa.Column("realized_pnl", ExactDecimal(), nullable=True),
        sa.Column("broker_realized_pnl", ExactDecimal(), nullable=True),
        sa.Column("exec_ids", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["position_id"],
            ["positions.id"],
            name=op.f("fk_position_events_position_id_positions"),
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"],
            ["sync_runs.id"],
            name=op.f("fk_position_events_sync_run_id_sync_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_position_events")),
        one_of("position_events", "kind", EVENT_KINDS),
        one_of("position_events", "price_source", PRICE_SOURCES),
    )
    op.create_index(op.f("ix_position_events_position_id"), "position_events", ["position_id"])
    op.create_index(op.f("ix_position_events_sync_run_id"), "position_events", ["sync_run_id"])

    op.create_table(
        "executions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("shares", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("perm_id", sa.BigInteger(), nullable=True),
        sa.Column("order_ref", sa.String(length=128), nullable=True),
        sa.Column("commission", ExactDecimal(), nullable=True),
        sa.Column("commission_currency", sa.String(length=8), nullable=True),
        sa.Column("realized_pnl", ExactDecimal(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_executions_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint("exec_id", name=op.f("uq_executions_exec_id")),
    )
    op.create_index(op.f("ix_executions_account_id_con_id"), "executions", ["account_id", "con_id"])


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
