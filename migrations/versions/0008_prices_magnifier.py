"""`executions.price_magnifier`: IB's priceMagnifier of a fill's contract (issue 16, item 3).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Cents-quoted futures (priceMagnifier 100 in IB's contract details) report execution prices in
cents while avgCost / multiplier is in dollars. From this revision on the ledger stores every
price per unit in the currency's main unit (app.domain.prices): a fill's `price` is IB's ÷ its
magnifier, stored beside it so that `price × price_magnifier` is still the price exactly as IB
sent it. NULL means 1 (every fill stored before: nothing to backfill — a cents-quoted fill
stored earlier is in IB's units, as it was booked; re-importing it is out of scope here).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable column (NULL: magnifier 1)."""
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("price_magnifier", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
