"""`account_values`: IB's latest NetLiq and cash account values per (account, tag, currency).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

Issue 19: the summary strip and `status` show NetLiq and cash as IB reported them
(NetLiquidation and TotalCashValue in the base currency; NetLiquidationByCurrency and
CashBalance per currency and BASE), offline too, with their age. Like `exchange_rates` (0007) the
table answers "what did IB last say": one row per key, replaced by a newer report, written only
by an OK sync. `value` is the text IB sent (a fact; read as a number only to show it). Empty at
first: ledgers from before this revision never stored these values.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table and its unique key."""
    op.create_table(
        "account_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_values_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_values")),
    )
    op.create_index(
        "uq_account_values_account_id_tag_currency",
        "account_values",
        ["account_id", "tag", "currency"],
        unique=True,
    )


def downgrade() -> None:
    """Drop the table: its values are only a copy of what IB reports at the next sync."""
    op.drop_index("uq_account_values_account_id_tag_currency", table_name="account_values")
    op.drop_table("account_values")
