"""The ledger's tables (DESIGN.md "Database contract"); Alembic migrations must match them.

Table and column names are a public contract: add freely, rename none. Rows of these classes
stay inside app.db — the repository converts them to domain values.

Enumerated columns are short strings with a named CHECK (portable, and extending one is a
migration that rewrites the CHECK, not a PostgreSQL enum type). Every quantity and money column is
an `ExactDecimal`, every timestamp a `UTCDateTime`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    column,
    or_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db.partial_index import partial_index
from app.db.types import ExactDecimal, UTCDateTime

# Every constraint and index gets a deterministic name, which batch migrations on SQLite need to
# find them again and PostgreSQL shares.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

POSITION_STATUSES = ("OPEN", "CLOSED")
CLOSE_REASONS = ("broker", "flip", "manual", "missing", "expired", "converted")
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
    "CONVERTED",
)
PRICE_SOURCES = ("fills", "market", "last_known", "manual")
PNL_BASES = ("exact", "estimated", "unknown")
OBSERVATION_KINDS = ("reported", "absent", "absent_close", "user_close", "confirmed")
SYNC_TRIGGERS = ("startup", "periodic", "position_update", "execution", "manual", "reconnect")
SYNC_STATUSES = ("ok", "failed", "skipped")

# Partial index predicate: written once so SQLite and PostgreSQL get the same index
# (app.db.partial_index: without importing the PostgreSQL dialect on SQLite starts).
OPEN_ONLY = "status = 'OPEN'"


def one_of(name: str, values: tuple[str, ...]) -> CheckConstraint:
    """A CHECK that `name` (when not NULL) is one of `values`; named `ck_<table>_<name>`.

    Written as `name = 'a' OR name = 'b' OR …`, not `name IN ('a', 'b', …)`: for an IN list of
    more than two constants SQLite builds an ephemeral index once per execution of the statement,
    which in an executemany is once per row — with the position, event and observation CHECKs,
    nearly half of SQLite's own work inserting a first sync's rows. The comparisons mean the same
    (NULL passes either way) and cost nothing; migration 0013 rewrote the older IN forms.
    """
    return CheckConstraint(or_(*(column(name) == value for value in values)), name=name)


class Base(DeclarativeBase):
    """Declarative base holding the ledger's MetaData."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        Decimal: ExactDecimal(),
        datetime: UTCDateTime(),
    }


class AccountRow(Base):
    """An IB account; legacy accounts from the seed carry a placeholder `legacy-<id>` code."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    alias: Mapped[str | None] = mapped_column(String(64))
    base_currency: Mapped[str | None] = mapped_column(String(8))
    # When the newest committed broker snapshot of this account finished collecting; kept where
    # several syncers share the ledger (PostgreSQL; see app.db.concurrency), NULL on SQLite.
    last_snapshot_at: Mapped[datetime | None]


class PositionRow(Base):
    """One lifecycle of one contract in one account (re-opening makes a new row).

    `con_id` is NULL only on rows carried over from the seed, which keyed by symbol; NULLs do not
    collide in the one-OPEN-row index. `multiplier` is 1 where IB leaves it empty.
    """

    __tablename__ = "positions"
    __table_args__ = (
        one_of("status", POSITION_STATUSES),
        one_of("close_reason", CLOSE_REASONS),
        one_of("pnl_basis", PNL_BASES),
        partial_index(
            "uq_positions_open_account_id_con_id",
            "account_id",
            "con_id",
            unique=True,
            where=OPEN_ONLY,
        ),
        Index("ix_positions_account_id_con_id", "account_id", "con_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    con_id: Mapped[int | None] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    sec_type: Mapped[str | None] = mapped_column(String(8))
    currency: Mapped[str | None] = mapped_column(String(8))
    exchange: Mapped[str | None] = mapped_column(String(32))
    local_symbol: Mapped[str | None] = mapped_column(String(64))
    multiplier: Mapped[Decimal] = mapped_column(default=Decimal(1))
    expiry: Mapped[str | None] = mapped_column(String(16))  # IB's YYYYMMDD or YYYYMM, as given
    strike: Mapped[Decimal | None]
    right: Mapped[str | None] = mapped_column(String(4))
    quantity: Mapped[Decimal]  # signed: negative = short
    average_price: Mapped[Decimal]  # per unit: IB avgCost / multiplier
    average_cost: Mapped[Decimal | None]  # IB's raw avgCost
    current_price: Mapped[Decimal | None]
    market_value: Mapped[Decimal | None]
    unrealized_pnl: Mapped[Decimal | None]
    unrealized_pnl_pct: Mapped[Decimal | None]
    realized_pnl: Mapped[Decimal | None]  # cumulative for the lifecycle
    status: Mapped[str] = mapped_column(String(8), index=True)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(16))
    last_synced_at: Mapped[datetime]
    missing_since: Mapped[datetime | None]
    entry_trade_id: Mapped[str | None] = mapped_column(String(64))  # IB execId
    exit_trade_id: Mapped[str | None] = mapped_column(String(64))  # IB execId
    # The part of realized_pnl resting on estimates; the least trustworthy basis of its events.
    realized_pnl_estimated: Mapped[Decimal | None]
    pnl_basis: Mapped[str | None] = mapped_column(String(16))


class SyncRunRow(Base):
    """One sync attempt; committed in the same transaction as the changes it made."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        one_of("trigger", SYNC_TRIGGERS),
        one_of("status", SYNC_STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    positions_seen: Mapped[int] = mapped_column(default=0)
    opened: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    closed: Mapped[int] = mapped_column(default=0)
    missing: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    # What a committed run lacked (issue 16): a JSON object account -> why its prices were not
    # refreshed, and why the executions answer was unavailable. NULL: nothing lacked.
    stale_prices: Mapped[str | None] = mapped_column(Text)
    fills_unavailable: Mapped[str | None] = mapped_column(Text)


class PositionEventRow(Base):
    """One step in a position's history; `exec_ids` is a comma-separated list of IB execIds."""

    __tablename__ = "position_events"
    __table_args__ = (
        one_of("kind", EVENT_KINDS),
        one_of("price_source", PRICE_SOURCES),
        one_of("pnl_basis", PNL_BASES),
        one_of("pnl_basis_fifo", PNL_BASES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    position_id: Mapped[int] = mapped_column(ForeignKey("positions.id"), index=True)
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    quantity_before: Mapped[Decimal]
    quantity_after: Mapped[Decimal]
    price: Mapped[Decimal | None]
    price_source: Mapped[str | None] = mapped_column(String(16))
    realized_pnl: Mapped[Decimal | None]
    broker_realized_pnl: Mapped[Decimal | None]
    exec_ids: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    pnl_basis: Mapped[str | None] = mapped_column(String(16))  # NULL: realizes nothing
    realized_pnl_fifo: Mapped[Decimal | None]  # the same event under FIFO lots (app.domain.lots)
    pnl_basis_fifo: Mapped[str | None] = mapped_column(String(16))  # basis of the FIFO figure


class ExecutionRow(Base):
    """One IB fill, unique by execId; `realized_pnl` is NULL when IB leaves it unset."""

    __tablename__ = "executions"
    __table_args__ = (Index("ix_executions_account_id_con_id", "account_id", "con_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    exec_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    con_id: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))  # IB's BOT / SLD
    shares: Mapped[Decimal]  # unsigned, as IB reports it
    price: Mapped[Decimal]
    time: Mapped[datetime]
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    order_ref: Mapped[str | None] = mapped_column(String(128))
    commission: Mapped[Decimal | None]
    commission_currency: Mapped[str | None] = mapped_column(String(8))
    realized_pnl: Mapped[Decimal | None]
    seen_at: Mapped[datetime | None]  # when the ledger first stored it (the snapshot's time)
    # IB's priceMagnifier (NULL: 1): `price` is per unit in dollars, IB's price ÷ this (cents-
    # quoted futures send 100), so price × price_magnifier is the price exactly as IB sent it.
    price_magnifier: Mapped[int | None] = mapped_column(Integer)
    fifo_pnl_realized: Mapped[Decimal | None]  # IB's FIFO figure (a Flex statement's), or NULL


class ObservationRow(Base):
    """A fact the ledger is folded from besides fills (app.domain.history.Observation): what a
    complete snapshot reported for a key that changed, that it did not report it, or that the
    user marked it closed. Never derived values: residuals and estimates are re-derived."""

    __tablename__ = "observations"
    __table_args__ = (
        one_of("kind", OBSERVATION_KINDS),
        Index("ix_observations_account_id_con_id", "account_id", "con_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    con_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    observed_at: Mapped[datetime]
    quantity: Mapped[Decimal | None]  # the broker's, as sent
    average_cost: Mapped[Decimal | None]  # IB's avgCost, as sent
    price: Mapped[Decimal | None]  # IB's market price, or the user's exit price
    note: Mapped[str | None] = mapped_column(Text)
    sync_run_id: Mapped[int | None] = mapped_column(ForeignKey("sync_runs.id"))
    # A conversion seen at this sync (app.domain.conversions), or confirmed by a statement: the
    # other conId; on the vanished key's row also what the broker reported for that one.
    paired_con_id: Mapped[int | None] = mapped_column(BigInteger)
    paired_quantity: Mapped[Decimal | None]
    paired_average_cost: Mapped[Decimal | None]


class ExchangeRateRow(Base):
    """IB's latest `ExchangeRate` account value per (account, currency), with when it was seen."""

    __tablename__ = "exchange_rates"
    __table_args__ = (
        Index("uq_exchange_rates_account_id_currency", "account_id", "currency", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    currency: Mapped[str] = mapped_column(String(8))
    base_currency: Mapped[str] = mapped_column(String(8))
    rate: Mapped[Decimal]  # 1 unit of currency = rate units of base_currency
    reported_at: Mapped[datetime]


class AccountValueRow(Base):
    """IB's latest account value per (account, tag, currency) of the tags the ledger keeps
    (NetLiq and cash: app.domain.account_values), as IB sent it, with when it was seen."""

    __tablename__ = "account_values"
    __table_args__ = (
        Index(
            "uq_account_values_account_id_tag_currency",
            "account_id",
            "tag",
            "currency",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    tag: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(8))  # a currency code, or BASE
    value: Mapped[str] = mapped_column(Text)  # exactly the text IB sent (a fact, not a Decimal)
    reported_at: Mapped[datetime]
