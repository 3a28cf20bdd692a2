"""History + fold: `observations`, `exchange_rates`, and every realized amount's basis.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

DESIGN.md "Lifecycle and realized P&L": a key's ledger is a fold of its fills and its
observations (what the broker reported at a sync that saw a change, that it did not report it, or
the user's Mark closed). Ledgers from before this revision kept only the derived events, so the
facts those events rest on are recovered from them here, in their order:

- an event without fills that moved the quantity (an unexplained opening, add, reduction or
  close, a split, a reappearance) → a `reported` observation of the quantity after it (IB's
  average: the lifecycle's own at that point, as booked; the event's price as the market price);
- `MISSING` → `absent`; a close by `mark_missing_as_closed` → `absent_close`;
- `MARKED_CLOSED` → `user_close` at the user's price, time and note;
- every OPEN lifecycle → a `reported` observation of its quantity and IB's average at its
  `last_synced_at` (the latest thing the broker told us).

Stored figures are kept: existing events get a `pnl_basis` (`exact` where fills priced them,
`estimated` otherwise) and lifecycles the estimated part of their realized P&L; a key is folded
again from these facts only when something new touches it (app.db.history).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.db.types import ExactDecimal, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CLOSE_REASONS = ("broker", "flip", "manual", "missing", "expired")
PNL_BASES = ("exact", "estimated", "unknown")
OBSERVATION_KINDS = ("reported", "absent", "absent_close", "user_close")
_MOVES = ("OPENED", "INCREASED", "REDUCED", "CLOSED", "SPLIT", "REAPPEARED")


def one_of(table: str, name: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    """The same CHECK app.db.tables.one_of declares, with this revision's values frozen."""
    return sa.CheckConstraint(sa.column(name).in_(values), name=op.f(f"ck_{table}_{name}"))


def upgrade() -> None:
    """Add the columns and tables, then backfill bases and recover observations."""
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("realized_pnl_estimated", ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("pnl_basis", sa.String(length=16), nullable=True))
        batch.drop_constraint(op.f("ck_positions_close_reason"), type_="check")
        batch.create_check_constraint(
            op.f("ck_positions_close_reason"), sa.column("close_reason").in_(CLOSE_REASONS)
        )
        batch.create_check_constraint(
            op.f("ck_positions_pnl_basis"), sa.column("pnl_basis").in_(PNL_BASES)
        )
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("seen_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("position_events") as batch:
        batch.add_column(sa.Column("pnl_basis", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("realized_pnl_fifo", ExactDecimal(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_position_events_pnl_basis"), sa.column("pnl_basis").in_(PNL_BASES)
        )
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("con_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("quantity", ExactDecimal(), nullable=True),
        sa.Column("average_cost", ExactDecimal(), nullable=True),
        sa.Column("price", ExactDecimal(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("sync_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_observations_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["sync_run_id"], ["sync_runs.id"], name=op.f("fk_observations_sync_run_id_sync_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
        one_of("observations", "kind", OBSERVATION_KINDS),
    )
    op.create_index("ix_observations_account_id_con_id", "observations", ["account_id", "con_id"])
    op.create_table(
        "exchange_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("base_currency", sa.String(length=8), nullable=False),
        sa.Column("rate", ExactDecimal(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_exchange_rates_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_rates")),
    )
    op.create_index(
        "uq_exchange_rates_account_id_currency",
        "exchange_rates",
        ["account_id", "currency"],
        unique=True,
    )
    _backfill(op.get_bind())


def _backfill(bind: sa.Connection) -> None:
    dec = ExactDecimal()
    when = UTCDateTime()
    meta = sa.MetaData()
    positions = sa.Table(
        "positions",
        meta,
        sa.Column("id", sa.Integer),
        sa.Column("account_id", sa.Integer),
        sa.Column("con_id", sa.BigInteger),
        sa.Column("multiplier", dec),
        sa.Column("quantity", dec),
        sa.Column("average_cost", dec),
        sa.Column("average_price", dec),
        sa.Column("current_price", dec),
        sa.Column("status", sa.String),
        sa.Column("last_synced_at", when),
        sa.Column("realized_pnl_estimated", dec),
        sa.Column("pnl_basis", sa.String),
    )
    events = sa.Table(
        "position_events",
        meta,
        sa.Column("id", sa.Integer),
        sa.Column("position_id", sa.Integer),
        sa.Column("sync_run_id", sa.Integer),
        sa.Column("kind", sa.String),
        sa.Column("occurred_at", when),
        sa.Column("quantity_after", dec),
        sa.Column("price", dec),
        sa.Column("price_source", sa.String),
        sa.Column("realized_pnl", dec),
        sa.Column("exec_ids", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("pnl_basis", sa.String),
    )
    observations = sa.Table(
        "observations",
        meta,
        sa.Column("account_id", sa.Integer),
        sa.Column("con_id", sa.BigInteger),
        sa.Column("kind", sa.String),
        sa.Column("observed_at", when),
        sa.Column("quantity", dec),
        sa.Column("average_cost", dec),
        sa.Column("price", dec),
        sa.Column("note", sa.Text),
        sa.Column("sync_run_id", sa.Integer),
    )
    lifecycles = {row.id: row for row in bind.execute(sa.select(positions))}
    estimated: dict[int, Decimal] = defaultdict(Decimal)
    worst: dict[int, str] = {}
    recovered: list[dict[str, Any]] = []
    for event in bind.execute(sa.select(events).order_by(events.c.occurred_at, events.c.id)):
        life = lifecycles.get(event.position_id)
        if event.realized_pnl is not None:
            basis = "exact" if event.price_source == "fills" else "estimated"
            bind.execute(events.update().where(events.c.id == event.id).values(pnl_basis=basis))
            if basis == "estimated":
                estimated[event.position_id] += event.realized_pnl
                worst[event.position_id] = "estimated"
            else:
                worst.setdefault(event.position_id, "exact")
        if life is None or life.con_id is None:
            continue  # a seed row keyed by symbol: nothing to fold it by
        kind = _observed(event)
        if kind is None:
            continue
        multiplier = life.multiplier or Decimal(1)
        recovered.append(
            {
                "account_id": life.account_id,
                "con_id": life.con_id,
                "kind": kind,
                "observed_at": event.occurred_at,
                "quantity": event.quantity_after if kind == "reported" else None,
                "average_cost": (
                    event.price * multiplier
                    if kind == "reported" and event.price is not None
                    else None
                ),
                "price": event.price if kind in ("reported", "user_close") else None,
                "note": event.note if kind == "user_close" else "recovered by revision 0007",
                "sync_run_id": event.sync_run_id,
            }
        )
    for life in lifecycles.values():
        if life.id in worst:
            bind.execute(
                positions.update()
                .where(positions.c.id == life.id)
                .values(
                    realized_pnl_estimated=estimated.get(life.id, Decimal(0)),
                    pnl_basis=worst[life.id],
                )
            )
        if life.status == "OPEN" and life.con_id is not None:
            recovered.append(
                {
                    "account_id": life.account_id,
                    "con_id": life.con_id,
                    "kind": "reported",
                    "observed_at": life.last_synced_at,
                    "quantity": life.quantity,
                    "average_cost": life.average_cost
                    if life.average_cost is not None
                    else life.average_price * (life.multiplier or Decimal(1)),
                    "price": life.current_price,
                    "note": "recovered by revision 0007",
                    "sync_run_id": None,
                }
            )
    if recovered:
        bind.execute(observations.insert(), recovered)


def _observed(event: Any) -> str | None:
    """The observation an event of a ledger from before 0007 stands for, if any."""
    if event.kind == "MISSING":
        return "absent"
    if event.kind == "MARKED_CLOSED":
        return "user_close"
    if event.kind not in _MOVES or event.exec_ids:
        return None  # fills explain it: the fills are the facts
    if event.kind == "CLOSED" and "mark_missing_as_closed" in (event.note or ""):
        return "absent_close"
    return "reported"


def downgrade() -> None:
    """Not supported: the app never downgrades; restore the backup made before upgrading."""
    raise NotImplementedError("restore the *.bak-<revision>-* backup instead")
