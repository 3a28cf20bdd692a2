"""The Closed view's totals line: realized P&L of the closed lifecycles, and of the partial
closes of open ones, per currency, in the figure the setting `cost_basis` picks — and saying
which, since average cost and FIFO lots differ for the same trades.

Pure (no widget): the controller reads the FIFO amounts when they are needed and sets the text.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.money import ByCurrency
from app.domain.realized import basis_label, lifecycle_totals
from app.domain.series import RealizedAmount
from app.domain.values import CostBasis, Lifecycle
from app.ui import formatting as fmt

TOOLTIP = (
    "Realized P&L per currency: amounts in different currencies are never added.\n"
    "Average cost sums each lifecycle's realized P&L as TWS shows it; FIFO lots sums its "
    "events' FIFO amounts, as IB's tax reporting (setting cost_basis, Settings > Realized "
    "totals).\n"
    "Estimated: priced from the market or the last known price, a commission not reported yet, "
    "or (FIFO) a lot the app did not see bought; it becomes exact when the missing fills or "
    "reports arrive.\n"
    "Unpriced: an amount the app could not price at all (in no figure); under FIFO also an "
    "event folded before FIFO was derived."
)


def per_currency_html(totals: ByCurrency) -> str:
    """One currency after another, exact and estimated apart (never added across currencies,
    and an estimate never shown as exact)."""
    parts = []
    for currency, t in totals.items():
        text = f"{currency or '?'} <b>{fmt.money(t.total)}</b>"
        if t.estimated:
            text += f" (exact {fmt.money(t.exact)}, <i>estimated {fmt.money(t.estimated)}</i>)"
        if t.unknown_count:
            text += f", <i>{t.unknown_count} unpriced</i>"
        parts.append(text)
    return " · ".join(parts) or "none"


def closed_totals_html(
    closed: Sequence[Lifecycle],
    open_rows: Sequence[Lifecycle],
    cost_basis: CostBasis,
    amounts: Sequence[RealizedAmount] = (),
) -> str:
    """The line above the Closed table; `amounts` are the events' FIFO amounts (used under FIFO
    only: repository.realized_amounts with CostBasis.FIFO)."""
    # An open lifecycle that realized nothing adds nothing (not even its currency).
    closed_totals = lifecycle_totals(closed, cost_basis, amounts)
    partial_totals = lifecycle_totals(open_rows, cost_basis, amounts)
    label = basis_label(cost_basis)
    column = (
        " <i>(the Realized column below is average cost; FIFO per event: the history's FIFO "
        "realized column)</i>"
        if cost_basis is CostBasis.FIFO
        else ""
    )
    return (
        f"<b>{len(closed)}</b> closed positions · realized P&amp;L, <b>{label}</b>: "
        f"{per_currency_html(closed_totals)}"
        f" — plus, by partial closes of open positions: {per_currency_html(partial_totals)}"
        f"{column}"
    )
