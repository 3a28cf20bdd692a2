"""Conversions: a conId IB replaced (a reverse split, an ISIN change) read as one event.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

app.domain.conversions: a key that vanishes while a new key of the same stock appears at one
sync, with no fills and numbers agreeing with a ratio, closes with `close_reason = converted` and
opens the new key's lifecycle with the cost basis and opening date carried (events of kind
`CONVERTED`). The fact stored is the observed pair (`observations.paired_con_id`, and on the
vanished key's row what the broker reported for the new one); a statement's corporate action
that states the conversion is stored as an observation of kind `confirmed`.

Self-contained: the CHECKs are rewritten with this revision's values frozen here (as 0007 does),
so another revision may be chained before it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db.types import ExactDecimal

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CLOSE_REASONS = ("broker", "flip", "manual", "missing", "expired")
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
OBSERVATION_KINDS = ("reported", "absent", "absent_close", "user_close")


def _recheck(table: str, name: str, values: tuple[str, ...]) -> None:
    """Replace the CHECK app.db.tables.one_of declares on `table.name` with `values`."""
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
        batch.create_check_constraint(op.f(f"ck_{table}_{name}"), sa.column(name).in_(values))


def upgrade() -> None:
    """Add the pairing columns, widen the three CHECKs."""
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("paired_con_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("paired_quantity", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("paired_average_cost", ExactDecimal(), nullable=True))
    _recheck("observations", "kind", (*OBSERVATION_KINDS, "confirmed"))
    _recheck("positions", "close_reason", (*CLOSE_REASONS, "converted"))
    _recheck("position_events", "kind", (*EVENT_KINDS, "CONVERTED"))


def downgrade() -> None:
    """Drop them. Rows only this revision allows cannot stay (their CHECK would fail): a
    conversion reads back as the nearest earlier kinds — the old lifecycle closed as `missing`,
    its CONVERTED events as CLOSED / OPENED — and a statement's confirmation is dropped."""
    op.execute("DELETE FROM observations WHERE kind = 'confirmed'")
    op.execute("UPDATE positions SET close_reason = 'missing' WHERE close_reason = 'converted'")
    op.execute(
        "UPDATE position_events SET kind = CASE WHEN quantity_before = 0 THEN 'OPENED' "
        "ELSE 'CLOSED' END WHERE kind = 'CONVERTED'"
    )
    _recheck("position_events", "kind", EVENT_KINDS)
    _recheck("positions", "close_reason", CLOSE_REASONS)
    _recheck("observations", "kind", OBSERVATION_KINDS)
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("paired_average_cost")
        batch.drop_column("paired_quantity")
        batch.drop_column("paired_con_id")
