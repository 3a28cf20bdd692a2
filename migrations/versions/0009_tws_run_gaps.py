"""`sync_runs.stale_prices` and `sync_runs.fills_unavailable`: what a committed run lacked.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

A real TWS may refuse an account's market data (2101: another API client holds the one
account-updates subscription) or never end the executions answer (TWS 10.30). Quantities still
sync (issue 16); the run records which accounts kept their last prices (a JSON object account ->
why) and why fills were unavailable, so `status` and the window can say so. NULL: nothing lacked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two nullable columns (no backfill: earlier runs recorded no gaps)."""
    with op.batch_alter_table("sync_runs") as batch:
        batch.add_column(sa.Column("stale_prices", sa.Text(), nullable=True))
        batch.add_column(sa.Column("fills_unavailable", sa.Text(), nullable=True))


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
