"""`accounts` gets the contract's columns: code (unique), alias, base_currency.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Seed accounts had only an id, so each keeps its id and gets the placeholder code
`legacy-<id>`: unique, and never an IB account code (those have no hyphen), so no real account
is mistaken for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns, give legacy accounts placeholder codes, then require a unique code."""
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("code", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("alias", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("base_currency", sa.String(length=8), nullable=True))

    accounts = sa.table("accounts", sa.column("id", sa.Integer()), sa.column("code", sa.String()))
    op.execute(
        accounts.update()
        .where(accounts.c.code.is_(None))
        .values(code=sa.literal("legacy-") + sa.cast(accounts.c.id, sa.String(length=20)))
    )

    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("code", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint(op.f("uq_accounts_code"), ["code"])


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
