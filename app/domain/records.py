"""Stored history as the app reads it back: events, sync runs, and the ledger's status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from app.domain.money import BaseConversion, RealizedTotals, to_base
from app.domain.values import (
    AccountValue,
    CostBasis,
    EventKind,
    ExchangeRate,
    Lifecycle,
    PnlBasis,
    PriceSource,
    SyncStatus,
    SyncTrigger,
)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One `position_events` row."""

    id: int
    position_id: int
    sync_run_id: int | None
    kind: EventKind
    occurred_at: datetime
    quantity_before: Decimal
    quantity_after: Decimal
    price: Decimal | None
    price_source: PriceSource | None
    realized_pnl: Decimal | None
    broker_realized_pnl: Decimal | None
    exec_ids: tuple[str, ...]
    note: str
    pnl_basis: PnlBasis | None = None
    realized_pnl_fifo: Decimal | None = None
    pnl_basis_fifo: PnlBasis | None = None


@dataclass(frozen=True, slots=True)
class SyncRun:
    """One `sync_runs` row."""

    id: int
    trigger: SyncTrigger
    started_at: datetime
    finished_at: datetime | None
    status: SyncStatus
    positions_seen: int
    opened: int
    updated: int
    closed: int
    missing: int
    duration_ms: int | None
    error: str | None
    stale_prices: tuple[tuple[str, str], ...] = ()
    """(account, why) whose market data this run could not refresh (last prices kept)."""
    fills_unavailable: str | None = None
    """Why the run had no executions answer (its changes are estimates until fills arrive)."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a finished sync attempt records in `sync_runs` (the counts come from the plan)."""

    trigger: SyncTrigger
    started_at: datetime
    finished_at: datetime
    status: SyncStatus
    error: str | None = None
    positions_seen: int = 0
    stale_prices: tuple[tuple[str, str], ...] = ()
    fills_unavailable: str | None = None

    @property
    def duration_ms(self) -> int:
        """Wall time of the attempt in whole milliseconds."""
        return round((self.finished_at - self.started_at).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class SyncStats:
    """Success rate and timing over the recent runs."""

    runs: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    mean_duration_ms: float | None = None
    max_duration_ms: int | None = None

    @property
    def success_rate(self) -> float | None:
        """Share of non-skipped runs that succeeded (None before the first run)."""
        attempted = self.ok + self.failed
        return self.ok / attempted if attempted else None


@dataclass(frozen=True, slots=True)
class StalePrices:
    """An account whose market data the latest committed sync kept from before (issue 16)."""

    account: str
    reason: str
    as_of: datetime | None
    """When a committed full sync last refreshed them (None: not within the runs kept)."""


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """Everything `status` reports, read from the cache alone."""

    database: str
    revision: str | None
    open_positions: int
    closed_positions: int
    accounts: tuple[str, ...]
    last_run: SyncRun | None
    last_success: SyncRun | None
    stats: SyncStats
    missing_at_broker: tuple[Lifecycle, ...] = field(default_factory=tuple)
    realized_by_currency: Mapping[str, RealizedTotals] = field(default_factory=dict)
    """Realized P&L per currency, exact and estimated apart; never one figure of several."""
    cost_basis: CostBasis = CostBasis.AVERAGE
    """Which figure `realized_by_currency` holds (average cost, or FIFO lots)."""
    exchange_rates: tuple[ExchangeRate, ...] = ()
    """IB's latest `ExchangeRate` per (account, currency), as stored."""
    stale_prices: tuple[StalePrices, ...] = ()
    """Accounts whose prices the latest committed run could not refresh, with their age."""
    account_values: tuple[AccountValue, ...] = ()
    """IB's latest NetLiq and cash values per (account, tag, currency), as stored."""
    base_currencies: Mapping[str, str | None] = field(default_factory=dict)
    """Each account's base currency as stored (None while IB has not named it)."""

    @property
    def realized_in_base(self) -> BaseConversion:
        """The realized totals in the accounts' base currency, or why there is no such figure."""
        return to_base(self.realized_by_currency, self.exchange_rates)
