"""FIFO lots: the basis of each event's FIFO realized P&L (`position_events.pnl_basis_fifo`)
and IB's own FIFO figure of each execution where a Flex statement gives it
(`executions.fifo_pnl_realized`, the Trade row's `fifoPnlRealized`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

DESIGN.md "FIFO lots": `realized_pnl_fifo` (added in 0007) is derived by app.domain.lots beside
the average-cost figure; a FIFO amount can be less certain than the average-cost one (a lot
opened from a residual priced at IB's average has an estimated basis), so it carries its own
basis. Existing rows keep NULL in both until their key is folded again (a fold compares them and
rewrites the key's events).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import ExactDecimal

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PNL_BASES = ("exact", "estimated", "unknown")


def upgrade() -> None:
    """Add the column and its CHECK."""
    with op.batch_alter_table("position_events") as batch:
        batch.add_column(sa.Column("pnl_basis_fifo", sa.String(length=16), nullable=True))
        batch.create_check_constraint(
            op.f("ck_position_events_pnl_basis_fifo"), sa.column("pnl_basis_fifo").in_(PNL_BASES)
        )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("fifo_pnl_realized", ExactDecimal(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("fifo_pnl_realized")
    with op.batch_alter_table("position_events") as batch:
        batch.drop_constraint(op.f("ck_position_events_pnl_basis_fifo"), type_="check")
        batch.drop_column("pnl_basis_fifo")
