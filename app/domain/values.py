"""Value types of the ledger: contracts, broker rows, fills, snapshots and lifecycles.

Everything here is immutable. Quantities and money are `Decimal`; times are aware UTC datetimes.
IB's floats and camelCase never reach this module: the broker adapter converts them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from app.domain.fast_init import fast_init

ZERO = Decimal(0)
ONE = Decimal(1)

PositionKey = tuple[str, int]
"""(IB account code, IB conId): the identity of a position. Never the symbol (DESIGN rule 4)."""


class PositionStatus(StrEnum):
    """Status of one lifecycle row."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"


class CloseReason(StrEnum):
    """Why a lifecycle ended."""

    BROKER = "broker"  # the broker reported zero, or fills netted it to zero
    FLIP = "flip"  # it went through zero; a new lifecycle holds the other side
    MANUAL = "manual"  # the user marked it closed
    MISSING = "missing"  # absent at the broker and `mark_missing_as_closed` is on
    EXPIRED = "expired"  # an option/warrant past expiry (at 0), or a future past it (last price)
    CONVERTED = "converted"  # IB replaced the conId (a reverse split, an ISIN change): no sale;
    # the holding and its cost basis go on in the new key's lifecycle (app.domain.conversions)


class EventKind(StrEnum):
    """What happened to a lifecycle (`position_events.kind`)."""

    OPENED = "OPENED"
    INCREASED = "INCREASED"
    REDUCED = "REDUCED"
    CLOSED = "CLOSED"
    SPLIT = "SPLIT"
    ADJUSTED = "ADJUSTED"
    MISSING = "MISSING"
    REAPPEARED = "REAPPEARED"
    MARKED_CLOSED = "MARKED_CLOSED"
    CONVERTED = "CONVERTED"  # the old key's lifecycle ends / the new key's starts (one conversion)


class PriceSource(StrEnum):
    """Where an event's price came from, best first."""

    FILLS = "fills"
    MARKET = "market"
    LAST_KNOWN = "last_known"
    MANUAL = "manual"


class PnlBasis(StrEnum):
    """How far a realized amount can be trusted (`position_events.pnl_basis`), best first."""

    EXACT = "exact"  # fills with price and commission known, against a known average
    ESTIMATED = "estimated"  # a market / last-known / user price, or a commission not reported yet
    UNKNOWN = "unknown"  # no price at all: the amount is NULL


def worse_basis(a: PnlBasis | None, b: PnlBasis | None) -> PnlBasis | None:
    """The less trustworthy of two bases (None: nothing realized)."""
    if a is None:
        return b
    if b is None:
        return a
    order = (PnlBasis.EXACT, PnlBasis.ESTIMATED, PnlBasis.UNKNOWN)
    return a if order.index(a) >= order.index(b) else b


class SyncTrigger(StrEnum):
    """What started a sync run (`sync_runs.trigger`)."""

    STARTUP = "startup"
    PERIODIC = "periodic"
    POSITION_UPDATE = "position_update"
    EXECUTION = "execution"
    MANUAL = "manual"
    RECONNECT = "reconnect"


class SyncStatus(StrEnum):
    """Outcome of a sync run (`sync_runs.status`)."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Side(StrEnum):
    """Execution side as IB reports it."""

    BOUGHT = "BOT"
    SOLD = "SLD"


@fast_init
@dataclass(frozen=True, slots=True)
class Contract:
    """An IB contract as far as the ledger cares. `multiplier` is 1 for stocks."""

    con_id: int
    symbol: str
    sec_type: str = "STK"
    currency: str = "USD"
    exchange: str = ""
    local_symbol: str = ""
    multiplier: Decimal = ONE
    expiry: str = ""
    strike: Decimal | None = None
    right: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """One position row of a broker snapshot, merged with its portfolio (market) data."""

    account: str
    contract: Contract
    quantity: Decimal
    average_cost: Decimal
    """IB's avgCost: per unit times the multiplier, commissions included."""
    market_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None

    @property
    def key(self) -> PositionKey:
        """(account, conId)."""
        return (self.account, self.contract.con_id)

    @property
    def average_price(self) -> Decimal:
        """Average price per unit (avgCost / multiplier)."""
        return self.average_cost / self.contract.multiplier


@fast_init
@dataclass(frozen=True, slots=True)
class Fill:
    """One execution with its commission report (either part may arrive later)."""

    exec_id: str
    account: str
    contract: Contract
    side: Side
    shares: Decimal
    """Always positive; `side` gives the direction."""
    price: Decimal
    time: datetime
    perm_id: int = 0
    order_ref: str = ""
    commission: Decimal | None = None
    commission_currency: str = ""
    realized_pnl: Decimal | None = None
    """IB's own per-fill realizedPNL; None when IB left it unset (never 0 for unknown)."""
    price_magnifier: Decimal = ONE
    """IB's priceMagnifier of the contract (100 for cents-quoted futures): `price` is IB's
    execution price divided by it, per unit in the currency's main unit like every price the
    ledger keeps (app.domain.prices); `price × price_magnifier` is what IB sent."""
    seen_at: datetime | None = None
    """When the ledger first stored it (the snapshot's time): a fill first seen after an
    observation was, nominally, not in that observation's position rows."""
    fifo_realized_pnl: Decimal | None = None
    """IB's FIFO realized P&L of this execution (a Flex statement's `fifoPnlRealized`); None
    where no statement gave it. FIFO lots (app.domain.lots) are checked against it."""

    @property
    def key(self) -> PositionKey:
        """(account, conId)."""
        return (self.account, self.contract.con_id)

    @property
    def signed_shares(self) -> Decimal:
        """Positive for a buy, negative for a sell."""
        return self.shares if self.side is Side.BOUGHT else -self.shares


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A broker row that could not be used (DESIGN rule 10); its key is never treated as absent."""

    key: PositionKey | None
    reason: str


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    """IB's `ExchangeRate` account value: 1 unit of `currency` = `rate` units of `base_currency`."""

    account: str
    currency: str
    base_currency: str
    rate: Decimal
    at: datetime
    """When the broker reported it (UTC)."""


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One of IB's account values (updateAccountValue `key value currency account`) the ledger
    keeps: NetLiq and cash (app.domain.account_values names the tags). `value` is the text as
    IB sent it — a fact, read as a number only where it is shown."""

    account: str
    tag: str
    currency: str
    """A currency code, or `BASE` for IB's base-currency ledger row."""
    value: str
    at: datetime
    """When the broker reported it (UTC)."""


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    """What the broker reported in one sync.

    `incomplete_reason` is None only for a complete snapshot (DESIGN rule 1). `scope` limits the
    snapshot to some keys (a selective sync after one event); None means every position of every
    account in `accounts`.
    """

    taken_at: datetime
    accounts: frozenset[str]
    positions: tuple[BrokerPosition, ...] = ()
    fills: tuple[Fill, ...] = ()
    skipped: tuple[SkippedRow, ...] = ()
    incomplete_reason: str | None = None
    scope: frozenset[PositionKey] | None = None
    exchange_rates: tuple[ExchangeRate, ...] = ()
    """Best-effort: IB's `ExchangeRate` account values seen while the snapshot was taken."""
    account_values: tuple[AccountValue, ...] = ()
    """Best-effort, like the rates: IB's NetLiq and cash account values seen so far on this
    connection (the latest of each); one IB left out keeps its stored value and age."""
    stale_prices: tuple[tuple[str, str], ...] = ()
    """(account, why) for each account whose market data this snapshot could not refresh
    (another API client holds TWS's one account-updates subscription: 2101; no download end).
    Quantities never wait for prices: the ledger keeps each position's last price."""
    fills_unavailable: str | None = None
    """Why the executions answer is missing (no execDetailsEnd), or None when it came. The
    changes its fills would have explained are then estimates, re-derived when fills arrive."""

    @property
    def complete(self) -> bool:
        """True when this snapshot may change the ledger."""
        return self.incomplete_reason is None


@fast_init
@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One `positions` row: a position from open to close. `id` is None until stored."""

    id: int | None
    account: str
    contract: Contract
    quantity: Decimal
    average_price: Decimal
    status: PositionStatus
    opened_at: datetime
    average_cost: Decimal | None = None
    current_price: Decimal | None = None
    market_value: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    unrealized_pnl_pct: Decimal | None = None
    realized_pnl: Decimal = ZERO
    closed_at: datetime | None = None
    close_reason: CloseReason | None = None
    last_synced_at: datetime | None = None
    missing_since: datetime | None = None
    entry_trade_id: str | None = None
    exit_trade_id: str | None = None
    realized_pnl_estimated: Decimal = ZERO
    """The part of `realized_pnl` that rests on estimates (market, last-known or user prices, a
    commission not reported yet); `realized_pnl - realized_pnl_estimated` is exact."""
    pnl_basis: PnlBasis | None = None
    """The least trustworthy basis of the lifecycle's realizing events (None: nothing realized;
    `unknown`: some realized amount could not be priced at all and is not in `realized_pnl`)."""

    @property
    def key(self) -> PositionKey:
        """(account, conId)."""
        return (self.account, self.contract.con_id)

    @property
    def realized_pnl_exact(self) -> Decimal:
        """The part of `realized_pnl` booked from fills with price and commission known."""
        return self.realized_pnl - self.realized_pnl_estimated

    @property
    def is_open(self) -> bool:
        """True while the lifecycle is OPEN."""
        return self.status is PositionStatus.OPEN


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What reconcile() needs from the cache.

    `open_positions`: every OPEN lifecycle of the accounts in question, by key.
    `known_fills`: stored fills whose base execId (up to the last dot) appears in the snapshot.
    """

    open_positions: dict[PositionKey, Lifecycle] = field(default_factory=dict)
    known_fills: dict[str, Fill] = field(default_factory=dict)


class CostBasis(StrEnum):
    """Which realized figure totals show (setting `cost_basis`; DESIGN.md "FIFO lots")."""

    AVERAGE = "average"  # as TWS shows it (positions.realized_pnl, position_events.realized_pnl)
    FIFO = "fifo"  # as IB's tax reporting (position_events.realized_pnl_fifo)
