"""`accounts.last_snapshot_at`: when the newest committed snapshot of the account was taken.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Several syncers sharing one PostgreSQL ledger use it to refuse a snapshot older than one already
committed (app.db.concurrency). NULL until a shared ledger's first sync; on SQLite it stays NULL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable column (no backfill: NULL means "no snapshot stamped yet")."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("last_snapshot_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
