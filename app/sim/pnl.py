"""IB's average-cost bookkeeping for one fill (what TWS reports as avgCost and realizedPNL).

IB's avgCost is per contract (price × multiplier) and *includes* commissions: buying adds the
commission to the cost, selling short takes it off the proceeds. Realized P&L on a reducing fill
is measured against that average, less the closing commission, so the round trip's total equals
proceeds − cost − both commissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """The position after a fill, and the realized P&L it booked (None: opening only)."""

    quantity: Decimal
    avg_cost: Decimal
    realized: Decimal | None


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def apply_fill(
    quantity: Decimal,
    avg_cost: Decimal,
    signed_shares: Decimal,
    price: Decimal,
    multiplier: Decimal,
    commission: Decimal,
) -> FillOutcome:
    """Apply a fill of `signed_shares` (+ bought, − sold) at `price` to a position."""
    if signed_shares == 0:
        return FillOutcome(quantity, avg_cost, None)
    new_quantity = quantity + signed_shares
    if quantity == 0 or _sign(quantity) == _sign(signed_shares):
        total = abs(quantity) * avg_cost + abs(signed_shares) * price * multiplier
        total += _sign(signed_shares) * commission
        return FillOutcome(new_quantity, total / abs(new_quantity), None)

    side = _sign(quantity)
    unit_cost = avg_cost / multiplier
    closed = min(abs(signed_shares), abs(quantity))
    # A flip's commission is shared between the closing and the opening part by quantity.
    closing_commission = commission * closed / abs(signed_shares)
    realized = (price - unit_cost) * closed * multiplier * side - closing_commission
    if new_quantity == 0:
        return FillOutcome(ZERO, ZERO, realized)
    if _sign(new_quantity) == side:
        return FillOutcome(new_quantity, avg_cost, realized)
    opened = abs(new_quantity)
    opening_commission = commission - closing_commission
    new_avg = (opened * price * multiplier + _sign(new_quantity) * opening_commission) / opened
    return FillOutcome(new_quantity, new_avg, realized)
