"""Realized totals by the setting `cost_basis` (issue 17, item 4): average cost from the
lifecycles' own columns, FIFO lots from their events' FIFO amounts by their own basis — per
currency, the estimated part apart, what has no FIFO figure counted as unpriced."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.domain.money import RealizedTotals
from app.domain.realized import amounts_by_currency, basis_label, lifecycle_totals
from app.domain.series import RealizedAmount, daily_realized
from app.domain.summary import summarize
from app.domain.values import Contract, CostBasis, Lifecycle, PnlBasis, PositionStatus

D = Decimal
T = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
AAPL = Contract(265598, "AAPL")
SAP = Contract(14204, "SAP", currency="EUR")


def life(pid: int, contract: Contract, realized: str, **values) -> Lifecycle:
    return Lifecycle(
        pid, "DU1", contract, D(10), D(100), PositionStatus.OPEN, T,
        realized_pnl=D(realized), **values,
    )  # fmt: skip


LIVES = [
    life(1, AAPL, "597", pnl_basis=PnlBasis.EXACT),
    life(2, SAP, "225", pnl_basis=PnlBasis.EXACT),
    life(3, AAPL, "198", pnl_basis=PnlBasis.EXACT),  # its event has no FIFO figure
    life(4, AAPL, "0"),  # realized nothing
]
FIFO = [
    RealizedAmount("DU1", "USD", T, D(647), PnlBasis.EXACT, 1),
    RealizedAmount("DU1", "EUR", T, D(250), PnlBasis.ESTIMATED, 2),
    RealizedAmount("DU1", "USD", T, None, None, 3),
    RealizedAmount("DU2", "USD", T, D(1000), PnlBasis.EXACT, 99),  # another lifecycle
]


def test_average_cost_comes_from_the_lifecycles_and_ignores_fifo_amounts():
    totals = lifecycle_totals(LIVES, CostBasis.AVERAGE, FIFO)
    assert totals == {"EUR": RealizedTotals(D(225)), "USD": RealizedTotals(D(795))}


def test_fifo_sums_the_events_of_these_lifecycles_by_their_own_basis():
    """USD 647 exact plus one unpriced (never booked as 0 or as 198), EUR 250 estimated;
    lifecycle 99's amount is not one of these lifecycles'."""
    totals = lifecycle_totals(LIVES, CostBasis.FIFO, FIFO)
    assert totals == {
        "EUR": RealizedTotals(D(0), D(250), 0),
        "USD": RealizedTotals(D(647), D(0), 1),
    }


def test_a_lifecycle_that_realized_without_events_is_unpriced_under_fifo():
    """Guards: a seed-era lifecycle (realized P&L, no events) vanishing from FIFO totals, which
    would pass them for complete."""
    seed = life(7, SAP, "40", pnl_basis=None)
    assert lifecycle_totals([seed], CostBasis.FIFO, FIFO) == {
        "EUR": RealizedTotals(unknown_count=1)
    }
    assert lifecycle_totals([life(8, SAP, "0")], CostBasis.FIFO, ()) == {}


def test_amounts_by_currency_filters_by_account():
    assert amounts_by_currency(FIFO, account="DU2") == {"USD": RealizedTotals(D(1000))}


def test_summary_realized_total_follows_the_cost_basis():
    """The strip's realized total: the lifecycles' average cost by default, FIFO amounts under
    FIFO; realized today is whatever figure the caller read (its amounts), labelled."""
    average = summarize(LIVES, (), ())
    usd = {c.currency: c for c in average.currencies}["USD"]
    assert usd.realized_total == RealizedTotals(D(795)) and average.cost_basis is CostBasis.AVERAGE
    fifo = summarize(LIVES, FIFO[:3], (), cost_basis=CostBasis.FIFO, realized=FIFO)
    by = {c.currency: c for c in fifo.currencies}
    assert by["USD"].realized_total == RealizedTotals(D(647), D(0), 1)
    assert by["EUR"].realized_total == RealizedTotals(D(0), D(250), 0)
    assert by["EUR"].realized_today == RealizedTotals(D(0), D(250), 0)
    assert fifo.cost_basis is CostBasis.FIFO


def test_daily_series_names_its_figure():
    daily = daily_realized(FIFO, account="DU1", tz=UTC, cost_basis=CostBasis.FIFO)
    assert daily.cost_basis is CostBasis.FIFO
    (day,) = daily.series("USD").days
    assert (day.realized, day.unknown) == (D(647), 1)
    assert basis_label(CostBasis.FIFO) == "FIFO lots"
    assert basis_label(CostBasis.AVERAGE) == "average cost"
