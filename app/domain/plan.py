"""The output of reconcile(): what the repository must write, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from app.domain.fast_init import fast_init
from app.domain.history import Observation
from app.domain.values import EventKind, Fill, Lifecycle, PnlBasis, PriceSource, SkippedRow


@dataclass(frozen=True, slots=True)
class ReconcileOptions:
    """The settings that change what a sync does to the ledger."""

    mark_missing_as_closed: bool = False
    calculate_realized_pnl: bool = True


@fast_init
@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """One `position_events` row to insert for a lifecycle."""

    kind: EventKind
    occurred_at: datetime
    quantity_before: Decimal
    quantity_after: Decimal
    price: Decimal | None = None
    price_source: PriceSource | None = None
    realized_pnl: Decimal | None = None
    broker_realized_pnl: Decimal | None = None
    exec_ids: tuple[str, ...] = ()
    note: str = ""
    pnl_basis: PnlBasis | None = None
    """None where the event realizes nothing; else how far `realized_pnl` can be trusted."""
    realized_pnl_fifo: Decimal | None = None
    """The same event's realized P&L under FIFO lots (app.domain.lots)."""
    pnl_basis_fifo: PnlBasis | None = None
    """How far `realized_pnl_fifo` can be trusted (never better than `pnl_basis`)."""


@fast_init
@dataclass(frozen=True, slots=True)
class LifecycleChange:
    """A lifecycle's new state and the events explaining it.

    `before` is None for a lifecycle this plan creates (its `after.id` is None too).
    """

    before: Lifecycle | None
    after: Lifecycle
    events: tuple[PlannedEvent, ...]
    replaces_events: bool = False
    """True when the key was folded again: `events` replace every stored event of the row."""

    @property
    def is_new(self) -> bool:
        """True when the repository must insert the row."""
        return self.before is None


@fast_init
@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """Fresh market data for an OPEN lifecycle whose quantity did not change."""

    position_id: int
    average_price: Decimal
    average_cost: Decimal | None
    current_price: Decimal | None
    market_value: Decimal | None
    unrealized_pnl: Decimal | None
    unrealized_pnl_pct: Decimal | None


@dataclass(frozen=True, slots=True)
class FillCorrection:
    """A stored fill replaced by its correction (same execId up to the last dot)."""

    replaced_exec_id: str
    fill: Fill


@dataclass(frozen=True, slots=True)
class PnlMismatch:
    """Our realized P&L for an event differs from IB's per-fill figure by more than 0.01."""

    account: str
    con_id: int
    symbol: str
    ours: Decimal
    broker: Decimal
    exec_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Everything one sync writes. Empty (and `incomplete_reason` set) for a failed snapshot."""

    synced_at: datetime
    accounts: frozenset[str] = frozenset()
    changes: tuple[LifecycleChange, ...] = ()
    market_updates: tuple[MarketUpdate, ...] = ()
    seen_position_ids: tuple[int, ...] = ()
    """OPEN lifecycles the broker reported: their `last_synced_at` moves to `synced_at`."""
    new_fills: tuple[Fill, ...] = ()
    corrections: tuple[FillCorrection, ...] = ()
    skipped: tuple[SkippedRow, ...] = ()
    pnl_mismatches: tuple[PnlMismatch, ...] = ()
    positions_seen: int = 0
    incomplete_reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    new_observations: tuple[Observation, ...] = ()
    """What this snapshot reported for the keys that changed: facts the fold reads again."""
    deleted_position_ids: tuple[int, ...] = ()
    """Lifecycles a fold no longer derives (a late fact merged two of them); deleted with their
    events, before the changes are written."""
    held_exec_ids: tuple[str, ...] = ()
    """Fills booked ahead of the broker's position rows, which did not show them yet."""
    superseded: bool = False
    """Another syncer committed a newer snapshot of these accounts while this one was taken, so
    nothing but a `skipped` run row was written (`incomplete_reason` says so); see
    app.db.concurrency."""

    @property
    def is_empty(self) -> bool:
        """True when applying the plan would change no lifecycle, event or fill."""
        return not (self.changes or self.new_fills or self.corrections or self.deleted_position_ids)

    @property
    def opened(self) -> int:
        """Lifecycles created."""
        return self.counts.get("opened", 0)

    @property
    def updated(self) -> int:
        """Existing lifecycles changed but still open."""
        return self.counts.get("updated", 0)

    @property
    def closed(self) -> int:
        """Lifecycles closed."""
        return self.counts.get("closed", 0)

    @property
    def missing(self) -> int:
        """New missing-at-broker warnings."""
        return self.counts.get("missing", 0)
