"""`positions` gets the contract's columns; quantities and money become exact decimals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Values are carried over in Python, not by a SQL cast: SQLite's and PostgreSQL's float-to-text
and float-to-numeric casts keep only 15 significant digits. Each float becomes the shortest
decimal that reads back as the same float (`repr`), so 150.25 becomes exactly 150.25. A value
with no decimal form (inf) stops the upgrade rather than being guessed; it rolls back whole.

Rows from the seed keep every value. Where the contract needs one the seed never stored:
`multiplier` 1 (the seed's P&L had no multiplier), a NULL `status` from `closed_at`,
`last_synced_at` as in 0002, and a NULL `opened_at` from `last_synced_at`. `con_id` stays
NULL on seed rows (the seed keyed by symbol), which the one-OPEN-row index lets through.
The `now()` default on `opened_at` is dropped: the app always writes UTC itself.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from alembic import op

from app.db.types import ExactDecimal

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FLOATS = ("average_price", "current_price", "unrealized_pnl", "unrealized_pnl_pct", "realized_pnl")
EXACT = ("quantity", *FLOATS)
OPEN_ONLY = "status = 'OPEN'"


def exact(value: object, row_id: object, name: str) -> Decimal | None:
    """The exact decimal a stored seed value stands for (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"positions row {row_id}: {name} is {value}, not a finite number")
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"positions row {row_id}: {name} is {value!r}, not a number") from exc
    else:
        raise ValueError(f"positions row {row_id}: {name} is {value!r}, not a number")
    if not number.is_finite():
        raise ValueError(f"positions row {row_id}: {name} is {value!r}, not a finite number")
    return number


def upgrade() -> None:
    """Add the contract columns, convert to exact decimals, backfill, then constrain and index."""
    bind = op.get_bind()
    columns = ", ".join(EXACT)
    converted = [
        {
            "row_id": row[0],
            **{f"v_{name}": exact(row[i], row[0], name) for i, name in enumerate(EXACT, start=1)},
        }
        for row in bind.execute(sa.text(f"SELECT id, {columns} FROM positions"))
    ]

    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("con_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("sec_type", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("currency", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("exchange", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("local_symbol", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("multiplier", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("expiry", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("strike", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("right", sa.String(length=4), nullable=True))
        batch.add_column(sa.Column("average_cost", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("market_value", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("close_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("missing_since", sa.DateTime(), nullable=True))
        batch.alter_column(
            "symbol",
            existing_type=sa.String(length=20),
            type_=sa.String(length=32),
            existing_nullable=False,
        )
        batch.alter_column(
            "quantity",
            existing_type=sa.Integer(),
            type_=ExactDecimal(),
            existing_nullable=False,
            postgresql_using="quantity::numeric",
        )
        for name in FLOATS:
            batch.alter_column(
                name,
                existing_type=sa.Float(),
                type_=ExactDecimal(),
                existing_nullable=name == "average_price",
                postgresql_using=f"{name}::numeric",
            )
        batch.alter_column(
            "status",
            existing_type=sa.Enum("OPEN", "CLOSED", name="positionstatus"),
            type_=sa.String(length=8),
            existing_nullable=True,
            postgresql_using="status::text",
        )
        batch.alter_column(
            "opened_at",
            existing_type=sa.DateTime(),
            existing_nullable=True,
            existing_server_default=sa.func.now(),
            server_default=None,
        )
    # PostgreSQL kept the enum type the seed created; elsewhere this is a no-op.
    sa.Enum("OPEN", "CLOSED", name="positionstatus").drop(bind, checkfirst=True)

    positions = sa.table(
        "positions",
        sa.column("id", sa.Integer()),
        *(sa.column(name, ExactDecimal()) for name in (*EXACT, "multiplier")),
        sa.column("status", sa.String()),
        sa.column("opened_at", sa.DateTime()),
        sa.column("closed_at", sa.DateTime()),
        sa.column("last_synced_at", sa.DateTime()),
    )
    c = positions.c
    if converted:
        bind.execute(
            positions.update()
            .where(c.id == sa.bindparam("row_id"))
            .values({name: sa.bindparam(f"v_{name}", type_=ExactDecimal()) for name in EXACT}),
            converted,
        )
    op.execute(
        positions.update()
        .where(c.multiplier.is_(None))
        .values(multiplier=sa.literal(Decimal(1), ExactDecimal()))
    )
    op.execute(
        positions.update()
        .where(c.status.in_(("open", "closed")))
        .values(status=sa.func.upper(c.status))
    )
    op.execute(
        positions.update()
        .where(c.status.is_(None))
        .values(status=sa.case((c.closed_at.is_(None), "OPEN"), else_="CLOSED"))
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.execute(
        positions.update()
        .where(c.last_synced_at.is_(None))
        .values(
            last_synced_at=sa.func.coalesce(
                c.closed_at, c.opened_at, sa.bindparam("now", now, type_=sa.DateTime())
            )
        )
    )
    op.execute(positions.update().where(c.opened_at.is_(None)).values(opened_at=c.last_synced_at))

    with op.batch_alter_table("positions") as batch:
        batch.alter_column("multiplier", existing_type=ExactDecimal(), nullable=False)
        batch.alter_column("status", existing_type=sa.String(length=8), nullable=False)
        batch.alter_column("opened_at", existing_type=sa.DateTime(), nullable=False)
        batch.alter_column("last_synced_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_check_constraint(
            op.f("ck_positions_status"), sa.column("status").in_(("OPEN", "CLOSED"))
        )
        batch.create_check_constraint(
            op.f("ck_positions_close_reason"),
            sa.column("close_reason").in_(("broker", "flip", "manual", "missing")),
        )
        batch.create_index(op.f("ix_positions_status"), ["status"])
        batch.create_index(op.f("ix_positions_account_id_con_id"), ["account_id", "con_id"])
    op.create_index(
        op.f("uq_positions_open_account_id_con_id"),
        "positions",
        ["account_id", "con_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_ONLY),
        postgresql_where=sa.text(OPEN_ONLY),
    )


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
