"""IB's average cost of one contract's position after its fills, for tests that play the broker.

IB's rows carry an average that includes the buys' commissions and that sales leave unchanged
(flat: 0). The refold benchmark, the Flex import benchmark and the partial-refold test build the
rows a sync would see from their fills with it, independently of the app's own fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from app.domain.values import Fill, Side

IB_AVERAGE_PLACES = Decimal("0.00000001")


def ib_average(fills: Iterable[Fill], split: int = 1) -> tuple[Decimal, Decimal]:
    """(quantity, IB's avgCost) after `fills` of one contract, then a `split`:1 split."""
    quantity, average = Decimal(0), Decimal(0)
    for f in fills:
        if f.side is Side.BOUGHT:
            cost = quantity * average + f.shares * f.price + (f.commission or 0)
            quantity += f.shares
            average = cost / quantity
        else:
            quantity -= f.shares
            if quantity == 0:
                average = Decimal(0)
    return quantity * split, (average / split).quantize(IB_AVERAGE_PLACES)
