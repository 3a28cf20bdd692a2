"""The history pane's FIFO pieces: the open lots of the selected lifecycle, and the FIFO figure
of its events (DESIGN.md "FIFO lots"; app.domain.lots derives both)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.domain.records import StoredEvent
from app.domain.values import PnlBasis
from app.ui import estimates
from app.ui import formatting as fmt
from app.ui.models.keyed import Column, KeyedTableModel

if TYPE_CHECKING:
    # An annotation only: app.domain.lots brings the FIFO fold, not needed before the first
    # paint of the cached ledger (issue 19); the lots arrive with a selected position.
    from app.domain.lots import OpenLot


def fifo_text(event: StoredEvent) -> str:
    """An event's FIFO realized P&L: 647.00 / ≈ 2,498.50 / ? (blank where it realizes none)."""
    if event.pnl_basis_fifo is PnlBasis.UNKNOWN:
        return estimates.UNKNOWN
    amount = fmt.money(event.realized_pnl_fifo)
    return estimates.APPROX + amount if event.pnl_basis_fifo is PnlBasis.ESTIMATED else amount


def fifo_why(event: StoredEvent) -> str:
    """Why an event's FIFO amount is not exact ("" when it is)."""
    if event.pnl_basis_fifo is PnlBasis.UNKNOWN:
        return "Unknown: a lot or the exit has no price; not counted in any total."
    if event.pnl_basis_fifo is PnlBasis.ESTIMATED:
        return (
            "Estimated: it closes a lot opened without a fill the app saw (priced from IB's "
            "average cost), or the average-cost figure is an estimate too.\n" + (event.note or "")
        ).strip()
    return ""


FIFO_COLUMN = Column(
    "FIFO realized",
    lambda e: e.realized_pnl_fifo,
    fifo_text,
    numeric=True,
    pnl=True,
    tooltip="Realized P&L under FIFO tax lots (IB's tax reporting), beside average cost",
    basis=lambda e: e.pnl_basis_fifo,
    why=fifo_why,
)


def _marked(item: OpenLot, text: str) -> str:
    if item.lot.basis is PnlBasis.UNKNOWN:
        return estimates.UNKNOWN
    return estimates.APPROX + text if item.lot.basis is PnlBasis.ESTIMATED else text


def _held(item: OpenLot) -> str:
    now = datetime.now(UTC)
    days = item.lot.holding_days(now)
    return f"{days} d (long)" if item.lot.long_term(now) else f"{days} d"


class LotsModel(KeyedTableModel):
    """The open FIFO lots of the selected lifecycle, oldest first."""

    default_order = staticmethod(lambda x: (x.lot.acquired_at, x.lot.exec_id or ""))

    columns = (
        Column(
            "Acquired",
            lambda x: x.lot.acquired_at,
            lambda x: fmt.local_time(x.lot.acquired_at, True),
            width=120,
        ),
        Column("Quantity", lambda x: x.lot.quantity, lambda x: fmt.quantity(x.lot.quantity), True),
        Column(
            "Cost basis",
            lambda x: x.lot.cost,
            lambda x: _marked(x, fmt.money(x.lot.cost)),
            numeric=True,
            tooltip="Incl. commission; a short's is negative (its proceeds)",
        ),
        Column(
            "Per unit",
            lambda x: x.lot.unit_cost(x.lifecycle.contract.multiplier),
            lambda x: fmt.price(x.lot.unit_cost(x.lifecycle.contract.multiplier)),
            numeric=True,
        ),
        Column(
            "Held",
            lambda x: x.lot.holding_days(datetime.now(UTC)),
            _held,
            numeric=True,
            tooltip="Days held; long-term after more than a year",
        ),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(lambda x: (x.lot.acquired_at, x.lot.exec_id, x.lot.quantity), parent)
