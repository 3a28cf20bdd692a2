"""`LedgerReader`: everything the window, the API, the notifier and the CLI read from the ledger.

Every read runs in `Database.read` — a snapshot transaction that takes no lock, so a read never
waits for a sync writing in this or another process (SQLite WAL: BEGIN DEFERRED; PostgreSQL:
REPEATABLE READ READ ONLY) and sees one consistent state across its statements. Each method
hands one module-level query (`fn(session, ...)`: the repository's, or one below that combines
several) to the database thread and returns domain values, never ORM rows. `BlockingLedgerReader`
is the same vocabulary for the command line, which has no event loop: the only difference is
`read_sync` for `read`, on the same query functions.

Callers above app.db never build `fn(session)` callables themselves: a read that is missing here
is added here (an import-linter contract keeps app.ui, app.api and app.notify off the repository
and the Database).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.db import account_values, rates
from app.db.database import Database
from app.db.repository import queries
from app.db.revision import ledger_status_now
from app.db.store import OpenPositions, kept_positions
from app.domain.money import ByCurrency
from app.domain.records import LedgerStatus, StalePrices, StoredEvent, SyncRun, SyncStats
from app.domain.series import DailyRealized, RealizedAmount, daily_realized
from app.domain.summary import Summary, summarize
from app.domain.values import (
    AccountValue,
    CostBasis,
    ExchangeRate,
    Fill,
    Lifecycle,
    PnlBasis,
    PositionKey,
)

if TYPE_CHECKING:
    # Read on demand only (the lots table, an export): app.db.export and app.db.lots bring the
    # FIFO fold (app.domain.lots, app.domain.fold), which the window's first paint of the cached
    # rows does not need (issue 19: cold start). The methods below import them when called.
    from app.domain.export import ExportKind, ExportTable
    from app.domain.lots import OpenLot

__all__ = ["BlockingLedgerReader", "LedgerReader"]

RUNS = 200
"""Sync runs the window's log lists."""


# ---------------------------------------------------------------------------- combined queries
def events_with_basis(
    session: Session, position_ids: Sequence[int], bases: Collection[PnlBasis]
) -> dict[int, list[StoredEvent]]:
    """The events of each of these lifecycles whose P&L basis is one of `bases`, oldest first
    (the window's tooltips: from what each estimated or unknown figure comes)."""
    return {
        pid: [e for e in queries.events(session, pid) if e.pnl_basis in bases]
        for pid in position_ids
    }


def realized_by_day(
    session: Session, account: str | None, tz: tzinfo | None, cost_basis: CostBasis
) -> DailyRealized:
    """The realizing events' amounts in the figure `cost_basis` picks, summed by currency and
    local day in `tz` (None: this machine's zone), of `account` or every account (the charts)."""
    amounts = queries.realized_amounts(session, None, cost_basis)
    return daily_realized(amounts, account=account, tz=tz, cost_basis=cost_basis)


def summary(
    session: Session,
    lifecycles: Sequence[Lifecycle],
    account: str | None,
    since: datetime,
    cost_basis: CostBasis,
) -> Summary:
    """The summary strip's figures of `lifecycles` (as the window holds them): today's realizing
    events from `since` (UTC) on and, under FIFO, every event's FIFO amount (a lifecycle row
    stores no FIFO sum), with IB's stored rates and account values, all from one snapshot."""
    today = queries.realized_amounts(session, since, cost_basis)
    realized = (
        queries.realized_amounts(session, None, cost_basis) if cost_basis is CostBasis.FIFO else []
    )
    return summarize(
        lifecycles,
        today,
        rates.latest_rates(session),
        account=account,
        cost_basis=cost_basis,
        realized=realized,
        account_values=account_values.latest_account_values(session),
        bases=account_values.base_currencies(session),
    )


# ---------------------------------------------------------------------------- the readers
class LedgerReader:
    """The ledger's read vocabulary for code on an event loop (each call awaits one snapshot).

    `kept` is the sync's kept copy of the OPEN lifecycles (app.db.store.OpenPositions, SQLite):
    `positions` shares its objects while it provably still is the ledger, and what it reads
    otherwise becomes that copy (the next sync shares the window's lifecycles in turn).
    """

    def __init__(self, db: Database, kept: OpenPositions | None = None) -> None:
        self._db = db
        self._kept = kept  # None: no sync's store to share with (every read reads the ledger)

    @property
    def location(self) -> str:
        """Where the ledger is, for people (a path, or a URL without its password)."""
        return self._db.location

    # -------------------------------------------------------------- lifecycles
    async def positions(self, *, include_closed: bool = False) -> list[Lifecycle]:
        """OPEN lifecycles, or every one, in `queries.position_order`; the kept copy's own
        objects where it still is the ledger (the window reloads after every sync)."""
        return await self._db.read(kept_positions, self._kept, include_closed)

    async def lifecycles_for(self, keys: Iterable[PositionKey]) -> list[Lifecycle]:
        """Every lifecycle, open and closed, of these (account, conId) keys."""
        return await self._db.read(queries.lifecycles_for, list(keys))

    async def lifecycle(self, position_id: int) -> Lifecycle | None:
        """One lifecycle by id, or None."""
        return await self._db.read(queries.position, position_id)

    async def missing_at_broker(self) -> list[Lifecycle]:
        """OPEN lifecycles the broker stopped reporting, oldest first."""
        return await self._db.read(queries.missing_at_broker)

    async def position_counts(self) -> dict[str, int]:
        """Lifecycles by status value."""
        return await self._db.read(queries.position_counts)

    async def accounts(self) -> list[str]:
        """Every known account code, sorted."""
        return await self._db.read(queries.account_codes)

    # -------------------------------------------------------------- history
    async def events(self, position_id: int) -> list[StoredEvent]:
        """A lifecycle's events, oldest first."""
        return await self._db.read(queries.events, position_id)

    async def events_with_basis(
        self, position_ids: Sequence[int], bases: Collection[PnlBasis]
    ) -> dict[int, list[StoredEvent]]:
        """Each lifecycle's events whose P&L basis is one of `bases`, by lifecycle id."""
        return await self._db.read(events_with_basis, list(position_ids), frozenset(bases))

    async def fills_for(self, key: PositionKey, since: datetime | None = None) -> list[Fill]:
        """Stored fills of one (account, conId), from `since` (UTC) on, oldest first."""
        return await self._db.read(queries.fills_for, key, since)

    async def open_lots(self, account: str | None = None) -> list[OpenLot]:
        """Every open FIFO lot of the OPEN lifecycles (of `account` only, when given)."""
        from app.db.lots import open_lots  # on demand: see TYPE_CHECKING above

        return await self._db.read(open_lots, account)

    # -------------------------------------------------------------- runs
    async def sync_runs(self, limit: int = RUNS) -> list[SyncRun]:
        """The latest `limit` runs, newest first."""
        return await self._db.read(queries.sync_runs, limit)

    async def last_success(self) -> SyncRun | None:
        """The latest run that committed a complete snapshot."""
        return await self._db.read(queries.last_success)

    async def sync_stats(self, window: int = 100) -> SyncStats:
        """Success rate and durations over the last `window` runs."""
        return await self._db.read(queries.sync_stats, window)

    async def stale_prices(self) -> tuple[StalePrices, ...]:
        """Accounts whose prices the latest committed run kept from before."""
        return await self._db.read(queries.stale_prices)

    # -------------------------------------------------------------- money
    async def realized_amounts(
        self, since: datetime | None = None, cost_basis: CostBasis = CostBasis.AVERAGE
    ) -> list[RealizedAmount]:
        """Every realizing event's amount in the figure `cost_basis` picks (from `since` on)."""
        return await self._db.read(queries.realized_amounts, since, cost_basis)

    async def realized_total(self, cost_basis: CostBasis = CostBasis.AVERAGE) -> ByCurrency:
        """Realized P&L per currency over every lifecycle, exact and estimated apart."""
        return await self._db.read(queries.realized_total, cost_basis)

    async def realized_by_day(
        self, account: str | None, tz: tzinfo | None, cost_basis: CostBasis
    ) -> DailyRealized:
        """Realized P&L by currency and local day (the charts' series)."""
        return await self._db.read(realized_by_day, account, tz, cost_basis)

    async def summary(
        self,
        lifecycles: Sequence[Lifecycle],
        account: str | None,
        since: datetime,
        cost_basis: CostBasis,
    ) -> Summary:
        """The summary strip's figures of `lifecycles` (see `summary()` above)."""
        return await self._db.read(summary, lifecycles, account, since, cost_basis)

    async def exchange_rates(self) -> list[ExchangeRate]:
        """IB's latest stored rate of each currency."""
        return await self._db.read(rates.latest_rates)

    async def account_values(self) -> list[AccountValue]:
        """IB's latest stored account values."""
        return await self._db.read(account_values.latest_account_values)

    async def base_currencies(self) -> dict[str, str | None]:
        """Each account's base currency, None where not known yet."""
        return await self._db.read(account_values.base_currencies)

    # -------------------------------------------------------------- documents
    async def export_rows(
        self, kind: ExportKind, account: str | None = None, as_of: datetime | None = None
    ) -> ExportTable:
        """One export's rows from one snapshot (app.db.export.read_export)."""
        from app.db.export import read_export  # on demand: see TYPE_CHECKING above

        return await self._db.read(read_export, kind, account, as_of)

    async def status(self, cost_basis: CostBasis = CostBasis.AVERAGE) -> LedgerStatus:
        """Everything `status` reports, with the revision stamped in the ledger."""
        return await self._db.read(ledger_status_now, self._db.location, cost_basis)


class BlockingLedgerReader:
    """`LedgerReader`'s reads the command line needs, blocking (`Database.read_sync`)."""

    def __init__(self, db: Database, kept: OpenPositions | None = None) -> None:
        self._db = db
        self._kept = kept  # None: no sync's store to share with (every read reads the ledger)

    def positions(self, *, include_closed: bool = False) -> list[Lifecycle]:
        """See LedgerReader.positions."""
        return self._db.read_sync(kept_positions, self._kept, include_closed)

    def open_lots(self, account: str | None = None) -> list[OpenLot]:
        """See LedgerReader.open_lots."""
        from app.db.lots import open_lots  # on demand: see TYPE_CHECKING above

        return self._db.read_sync(open_lots, account)

    def export_rows(
        self, kind: ExportKind, account: str | None = None, as_of: datetime | None = None
    ) -> ExportTable:
        """See LedgerReader.export_rows."""
        from app.db.export import read_export  # on demand: see TYPE_CHECKING above

        return self._db.read_sync(read_export, kind, account, as_of)

    def status(self, cost_basis: CostBasis = CostBasis.AVERAGE) -> LedgerStatus:
        """See LedgerReader.status."""
        return self._db.read_sync(ledger_status_now, self._db.location, cost_basis)
