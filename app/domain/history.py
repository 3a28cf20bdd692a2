"""The stored facts a key's ledger is folded from, besides its fills.

DESIGN.md "Lifecycle and realized P&L": store facts, derive guesses. A fill is one fact (app.domain.
values.Fill); an `Observation` is the other: what the broker reported for a key at a sync that saw
a change (its quantity and average), that a complete snapshot did not report it, or that the user
marked it closed. Residuals, splits, expiries and adjusted averages are never stored: the fold
(app.domain.fold) derives them from these, so a fact that arrives later dissolves the estimate it
explains.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from app.domain.fast_init import fast_init
from app.domain.values import EventKind, Fill, Lifecycle, PnlBasis, PositionKey, PriceSource


class ObservationKind(StrEnum):
    """What was observed about a key (`observations.kind`)."""

    REPORTED = "reported"  # a complete snapshot reported the key: quantity and IB's avgCost
    ABSENT = "absent"  # a complete snapshot did not report the key (mark_missing_as_closed off)
    ABSENT_CLOSE = "absent_close"  # not reported, and mark_missing_as_closed was on at the time
    USER_CLOSE = "user_close"  # the user marked the lifecycle closed at `price`
    CONFIRMED = "confirmed"  # a statement's corporate action states the conversion between
    # this key and `paired_con_id` (quantity: this key's change in it)


@fast_init
@dataclass(frozen=True, slots=True)
class Observation:
    """One `observations` row. `id` orders observations of one instant (None until stored)."""

    account: str
    con_id: int
    kind: ObservationKind
    at: datetime
    """UTC: when the snapshot was taken, or the close time the user gave."""
    quantity: Decimal | None = None
    """REPORTED: the broker's quantity (0 for a position closed today)."""
    average_cost: Decimal | None = None
    """REPORTED: IB's avgCost (per unit × multiplier, commissions included; 0 when flat)."""
    price: Decimal | None = None
    """REPORTED: IB's market price at the time (None when IB sent none); USER_CLOSE: the exit."""
    note: str = ""
    id: int | None = None
    paired_con_id: int | None = None
    """A conversion (app.domain.conversions) seen at this sync: the key that vanished (on the
    new key's REPORTED row), or the key that appeared (on the vanished key's row) — or, on a
    CONFIRMED row, the other key of the statement's action."""
    paired_quantity: Decimal | None = None
    """On the vanished key's row: the quantity the broker reported for `paired_con_id`."""
    paired_average_cost: Decimal | None = None
    """On the vanished key's row: IB's avgCost for `paired_con_id` (as sent)."""

    @property
    def key(self) -> PositionKey:
        """(account, conId)."""
        return (self.account, self.con_id)

    @property
    def vanished_into(self) -> int | None:
        """The conId this key was seen converted into at this sync (None: no such pairing)."""
        if self.kind is ObservationKind.CONFIRMED or self.paired_quantity is None:
            return None
        return self.paired_con_id

    @property
    def appeared_from(self) -> int | None:
        """The conId this key was seen converted from at this sync (None: no such pairing)."""
        if self.kind is not ObservationKind.REPORTED or self.paired_quantity is not None:
            return None
        return self.paired_con_id


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """What the ledger holds for one key: its lifecycles (oldest first) and the facts they were
    folded from (fills: the latest version of each execution)."""

    lifecycles: tuple[Lifecycle, ...] = ()
    fills: tuple[Fill, ...] = ()
    observations: tuple[Observation, ...] = ()
    events: Mapping[int, Sequence[EventFacts]] = field(default_factory=dict)
    """Each lifecycle's stored events by its id, oldest first (what a new fold is compared
    with: events it derives again unchanged are kept, not written again)."""
    folded_from: tuple[Fill, ...] | None = None
    """The fills `lifecycles` and `events` were folded from, when a caller changed `fills`
    before folding again (a statement completing stored fills, app.db.statements); None: `fills`
    as read. A re-fold keeps a stored lifecycle's FIFO figures only while the fills its events
    name are these very objects (app.domain.lots.with_fifo): whoever changes `fills` of a
    history read from the ledger must keep the ones read here."""


class EventFacts(Protocol):
    """What a stored and a planned event share (app.domain.records.StoredEvent, PlannedEvent)."""

    @property
    def kind(self) -> EventKind: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def quantity_before(self) -> Decimal: ...
    @property
    def quantity_after(self) -> Decimal: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def price_source(self) -> PriceSource | None: ...
    @property
    def realized_pnl(self) -> Decimal | None: ...
    @property
    def broker_realized_pnl(self) -> Decimal | None: ...
    @property
    def exec_ids(self) -> tuple[str, ...]: ...
    @property
    def note(self) -> str: ...
    @property
    def pnl_basis(self) -> PnlBasis | None: ...
    @property
    def realized_pnl_fifo(self) -> Decimal | None: ...
    @property
    def pnl_basis_fifo(self) -> PnlBasis | None: ...


def same_event(a: EventFacts, b: EventFacts) -> bool:
    """True when two events say the same thing (a stored one and one a fold derived again)."""
    return (
        same_event_before_fifo(a, b)
        and a.realized_pnl_fifo == b.realized_pnl_fifo
        and a.pnl_basis_fifo is b.pnl_basis_fifo
    )


def same_event_before_fifo(a: EventFacts, b: EventFacts) -> bool:
    """`same_event` but for the FIFO figures: everything app.domain.lots derives them from."""
    return (
        a.kind is b.kind
        and a.occurred_at == b.occurred_at
        and a.quantity_before == b.quantity_before
        and a.quantity_after == b.quantity_after
        and a.price == b.price
        and a.price_source is b.price_source
        and a.realized_pnl == b.realized_pnl
        and a.broker_realized_pnl == b.broker_realized_pnl
        and tuple(a.exec_ids) == tuple(b.exec_ids)
        and (a.note or "") == (b.note or "")
        and a.pnl_basis is b.pnl_basis
    )
