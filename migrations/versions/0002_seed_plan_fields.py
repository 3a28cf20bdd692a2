"""The seed plan's fields on `positions`; `last_synced_at` backfilled.

Revision ID: 0002
Revises: 0001
Create Date: 2024-12-19

`last_synced_at` becomes COALESCE(closed_at, opened_at, now): the last moment the row is known
to have matched the broker. `now` is computed here in UTC rather than by the database, whose
`now()` on PostgreSQL follows the session's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add last_synced_at, realized_pnl, entry_trade_id, exit_trade_id; backfill the first."""
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("last_synced_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("realized_pnl", sa.Float(), nullable=True))
        batch.add_column(sa.Column("entry_trade_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("exit_trade_id", sa.String(length=64), nullable=True))

    positions = sa.table(
        "positions",
        sa.column("opened_at", sa.DateTime()),
        sa.column("closed_at", sa.DateTime()),
        sa.column("last_synced_at", sa.DateTime()),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.execute(
        positions.update()
        .where(positions.c.last_synced_at.is_(None))
        .values(
            last_synced_at=sa.func.coalesce(
                positions.c.closed_at,
                positions.c.opened_at,
                sa.bindparam("now", now, type_=sa.DateTime()),
            )
        )
    )


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
