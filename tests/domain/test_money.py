"""Money per currency (pure): realized totals never add currencies, keep exact and estimated
apart, count unpriced amounts, and convert to the base currency only with IB's rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.money import (
    RealizedTotals,
    to_base,
    totals_from_amounts,
    totals_from_lifecycles,
)
from app.domain.values import (
    Contract,
    ExchangeRate,
    Lifecycle,
    PnlBasis,
    PositionStatus,
)
from tests.domain.ledger_fixture import AAPL, D

T = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
SAP = Contract(14204, "SAP", currency="EUR")
TOYOTA = Contract(13905, "7203", currency="JPY")


def life(
    contract: Contract,
    realized: str,
    estimated: str = "0",
    basis: PnlBasis | None = PnlBasis.EXACT,
) -> Lifecycle:
    return Lifecycle(
        id=None,
        account="DU1",
        contract=contract,
        quantity=D(0),
        average_price=D(1),
        status=PositionStatus.CLOSED,
        opened_at=T,
        realized_pnl=D(realized),
        realized_pnl_estimated=D(estimated),
        pnl_basis=basis,
    )


def rate(currency: str, value: str, base: str = "USD", minutes: int = 0) -> ExchangeRate:
    return ExchangeRate("DU1", currency, base, D(value), T + timedelta(minutes=minutes))


def test_lifecycle_totals_per_currency_exact_and_estimated_apart():
    """Guards: status/CLI/window totals that added USD, EUR and JPY into one figure (issue 15,
    item 5), and estimated P&L mixed into the exact figure (item 10)."""
    totals = totals_from_lifecycles(
        [
            life(AAPL, "399"),
            life(AAPL, "-50.5", "-20", PnlBasis.ESTIMATED),
            life(SAP, "100"),
            life(TOYOTA, "3000", "0", PnlBasis.UNKNOWN),
            life(SAP, "0", "0", None),  # realized nothing: adds nothing
        ]
    )
    assert list(totals) == ["EUR", "JPY", "USD"]
    assert totals["USD"] == RealizedTotals(D("368.5"), D("-20"), 0)  # 399 + (-30.5)
    assert totals["USD"].total == D("348.5")
    assert totals["EUR"] == RealizedTotals(D("100"), D(0), 0)
    assert totals["JPY"] == RealizedTotals(D("3000"), D(0), 1)


def test_event_amounts_by_basis():
    totals = totals_from_amounts(
        [
            ("USD", D("10"), PnlBasis.EXACT),
            ("USD", D("5"), PnlBasis.ESTIMATED),
            ("USD", None, PnlBasis.UNKNOWN),
            ("USD", D("1"), None),  # before bases were recorded: exact, as its lifecycle says
            ("EUR", D("2"), PnlBasis.ESTIMATED),
        ]
    )
    assert totals == {
        "EUR": RealizedTotals(D(0), D(2), 0),
        "USD": RealizedTotals(D(11), D(5), 1),
    }


def test_base_total_uses_ibs_rates_and_says_which():
    totals = {
        "EUR": RealizedTotals(D("100"), D("10")),
        "USD": RealizedTotals(D("399"), D("0"), 2),
    }
    rates = [rate("EUR", "1.0856", minutes=5), rate("EUR", "1.08", minutes=1), rate("USD", "1")]
    result = to_base(totals, rates)
    base = result.total
    assert base is not None and result.reason is None and result.missing == ()
    assert base.base_currency == "USD"
    assert base.exact == D("399") + D("100") * D("1.0856")  # the newest EUR rate
    assert base.estimated == D("10.856") and base.unknown_count == 2
    assert [r.rate for r in base.rates] == [D("1.0856")]
    assert base.rates_at == T + timedelta(minutes=5)


def test_base_total_refused_rather_than_guessed():
    """Guards: a base-currency figure that silently treated a currency without a rate as 1:1,
    or added into one base when the accounts have different ones."""
    totals = {"EUR": RealizedTotals(D("100")), "JPY": RealizedTotals(D("3000"))}
    missing = to_base(totals, [rate("EUR", "1.0856")])
    assert missing.total is None and missing.missing == ("JPY",)
    assert missing.reason == "no USD exchange rate is known for JPY"
    none = to_base(totals, [])
    assert none.total is None and none.reason == "no exchange rates are known"
    two = to_base(totals, [rate("EUR", "1.0856"), rate("JPY", "0.0062", base="EUR")])
    assert two.total is None and "different base currencies (EUR, USD)" in (two.reason or "")
    # Only the base currency realized: no rate needed, none used.
    only = to_base({"USD": RealizedTotals(D(5))}, [rate("EUR", "1.0856")])
    assert only.total is not None and only.total.total == 5 and only.total.rates == ()
