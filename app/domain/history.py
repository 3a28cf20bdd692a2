"""The stored facts a key's ledger is folded from, besides its fills.

DESIGN.md "Lifecycle and realized P&L": store facts, derive guesses. A fill is one fact (app.domain.
values.Fill); an `Observation` is the other: what the broker reported for a key at a sync that saw
a change (its quantity and average), that a complete snapshot did not report it, or that the user
marked it closed. Residuals, splits, expiries and adjusted averages are never stored: the fold
(app.domain.fold) derives them from these, so a fact that arrives later dissolves the estimate it
explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from app.domain.values import PositionKey


class ObservationKind(StrEnum):
    """What was observed about a key (`observations.kind`)."""

    REPORTED = "reported"  # a complete snapshot reported the key: quantity and IB's avgCost
    ABSENT = "absent"  # a complete snapshot did not report the key (mark_missing_as_closed off)
    ABSENT_CLOSE = "absent_close"  # not reported, and mark_missing_as_closed was on at the time
    USER_CLOSE = "user_close"  # the user marked the lifecycle closed at `price`


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

    @property
    def key(self) -> PositionKey:
        """(account, conId)."""
        return (self.account, self.con_id)
