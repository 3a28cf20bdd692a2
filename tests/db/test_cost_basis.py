"""The repository reads realized P&L in the figure the setting `cost_basis` picks (issue 17,
item 4), on the known ledger of tests/db/cost_basis_ledger.py (real syncs, real migrations)."""

from __future__ import annotations

from pathlib import Path

from app.db import repository
from app.db.migrate import open_database
from app.domain.money import RealizedTotals
from app.domain.values import CostBasis, PnlBasis
from tests.db.cost_basis_ledger import cost_basis_ledger
from tests.domain.ledger_fixture import D


def test_realized_amounts_carry_the_chosen_figure_and_their_lifecycle(tmp_path: Path) -> None:
    cost_basis_ledger(tmp_path / "ledger.sqlite")
    with open_database(tmp_path / "ledger.sqlite") as db:
        average = db.run_sync(repository.realized_amounts)
        fifo = db.run_sync(repository.realized_amounts, None, CostBasis.FIFO)
        every = db.run_sync(repository.positions, include_closed=True)
    lives = {p.id: p.contract.symbol for p in every}
    # The same events either way (those that realize at average cost), in time order.
    assert [(a.occurred_at, a.position_id) for a in average] == [
        (a.occurred_at, a.position_id) for a in fifo
    ]
    assert [(lives[a.position_id], a.amount, a.basis) for a in average] == [
        ("AAPL", D(597), PnlBasis.EXACT),
        ("MSFT", D(198), PnlBasis.EXACT),
        ("SAP", D(225), PnlBasis.EXACT),
    ]
    assert [(lives[a.position_id], a.amount, a.basis) for a in fifo] == [
        ("AAPL", D(647), PnlBasis.EXACT),
        ("MSFT", None, None),  # folded before FIFO was derived
        ("SAP", D(250), PnlBasis.ESTIMATED),
    ]


def test_realized_total_by_cost_basis(tmp_path: Path) -> None:
    """What `status` and GET /api/sync/status total: per currency, never added across."""
    cost_basis_ledger(tmp_path / "ledger.sqlite")
    with open_database(tmp_path / "ledger.sqlite") as db:
        average = db.run_sync(repository.realized_total)
        fifo = db.run_sync(repository.realized_total, CostBasis.FIFO)
    assert average == {"EUR": RealizedTotals(D(225)), "USD": RealizedTotals(D(795))}
    assert fifo == {
        "EUR": RealizedTotals(D(0), D(250), 0),
        "USD": RealizedTotals(D(647), D(0), 1),
    }
