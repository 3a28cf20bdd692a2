"""Realized totals by the setting `cost_basis`: which figure a total sums, and its name.

Average cost (as TWS shows it) is summed from the lifecycles' own columns (`positions.realized_pnl`
and `realized_pnl_estimated`): a seed-era lifecycle may have realized P&L and no events. A
lifecycle row stores no FIFO sum, so FIFO lots (as IB's tax reporting) are summed from its events'
FIFO amounts, each by its own basis (`position_events.realized_pnl_fifo`, `pnl_basis_fifo`).
Either way app.domain.money keeps currencies apart and the estimated part apart, and counts what
could not be priced instead of booking it. Every total that shows realized P&L (status, the
window's Closed view and summary strip, the charts, the local API) goes through here, so a
total never silently shows the other figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from app.domain.money import ByCurrency, totals_from_amounts, totals_from_lifecycles
from app.domain.series import RealizedAmount
from app.domain.values import CostBasis, Lifecycle, PnlBasis

BASIS_LABELS: dict[CostBasis, str] = {
    CostBasis.AVERAGE: "average cost",
    CostBasis.FIFO: "FIFO lots",
}
"""What a total says it shows, in every screen and text (the two figures differ: never mix)."""


def basis_label(cost_basis: CostBasis) -> str:
    """The name of the figure a total shows ("average cost" or "FIFO lots")."""
    return BASIS_LABELS[cost_basis]


def amounts_by_currency(
    amounts: Iterable[RealizedAmount], *, account: str | None = None
) -> ByCurrency:
    """Realized totals per currency of event amounts (of `account` only, when given)."""
    return totals_from_amounts(
        (a.currency, a.amount, a.basis) for a in amounts if account is None or a.account == account
    )


def _realized_something(life: Lifecycle) -> bool:
    # The same test money.totals_from_parts skips by: nothing realized (yet).
    return bool(life.realized_pnl or life.realized_pnl_estimated or life.pnl_basis is not None)


def lifecycle_totals(
    lifecycles: Iterable[Lifecycle],
    cost_basis: CostBasis,
    amounts: Iterable[RealizedAmount] = (),
) -> ByCurrency:
    """Realized totals per currency of these lifecycles by `cost_basis`.

    Average cost: from the lifecycles' own columns (`amounts` unused). FIFO: from `amounts`, the
    events' FIFO amounts read with their `position_id` (repository.realized_amounts with
    `CostBasis.FIFO`), of these lifecycles only. A lifecycle that realized something at average
    cost but has no event amount at all (a seed-era row) counts as one unknown under FIFO: its
    FIFO figure was never derived, and leaving it out would pass the total for complete.
    """
    chosen = list(lifecycles)
    if cost_basis is CostBasis.AVERAGE:
        return totals_from_lifecycles(chosen)
    ids = {life.id for life in chosen}
    mine = [a for a in amounts if a.position_id in ids]
    with_events = {a.position_id for a in mine}
    never_derived = (
        (life.contract.currency, None, PnlBasis.UNKNOWN)
        for life in chosen
        if life.id not in with_events and _realized_something(life)
    )
    return totals_from_amounts(
        chain(((a.currency, a.amount, a.basis) for a in mine), never_derived)
    )
